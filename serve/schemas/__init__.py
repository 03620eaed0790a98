"""Request and response schemas, one module (one schema family) per resource.

Input schemas (``*Create``) forbid unknown fields, bound every string and
number, reject numbers sent as strings and never echo the input in errors.
"""
