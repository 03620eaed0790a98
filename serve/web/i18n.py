"""Languages of the pages: English, Spanish, French, Portuguese (Babel message catalogues).

Catalogues live in ``serve/web/locale/<lang>/LC_MESSAGES/messages.po`` and are
compiled to ``messages.mo`` (both shipped). Update them with::

    pybabel extract -F serve/web/babel.cfg -o serve/web/locale/messages.pot serve/web
    pybabel update -i serve/web/locale/messages.pot -d serve/web/locale
    pybabel compile -d serve/web/locale

Reasons are built by the engine as English sentences; :func:`translate_reason`
recognises each sentence's pattern (:data:`REASON_PATTERNS`), translates the
pattern and puts the values back. A sentence no pattern knows is shown as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources

from babel.support import NullTranslations, Translations

from serve.web.accounts import LANGUAGES

LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "pt": "Português"}


def N_(message: str) -> str:  # noqa: N802 - Babel's marker for strings translated later
    """Mark ``message`` for extraction without translating it now."""
    return message


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English: readable names of codes such as ``NO_FINDING``, other texts as written)."""
    if language not in LANGUAGES:
        return NullTranslations()
    directory = resources.files("serve.web").joinpath("locale")
    return Translations.load(str(directory), [language], domain="messages")


REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"^Watchlist alert \(severity (?P<severity>\d)/5\): (?P<reason>.+) \(issued by (?P<issuer>[^()]+)\)$",
         N_("Watchlist alert (severity %(severity)s/5): %(reason)s (issued by %(issuer)s)")),
        (r"^Watchlist alert \(severity (?P<severity>\d)/5\): (?P<reason>.+)$", N_("Watchlist alert (severity %(severity)s/5): %(reason)s")),
        (r"^Watchlist alert: (?P<reason>.+)$", N_("Watchlist alert: %(reason)s")),
        (r"^Reefer with fresh fruit \(HS (?P<hs>\d+)\) loaded at (?P<port>.+), a high-risk cocaine source country\.$",
         N_("Reefer with fresh fruit (HS %(hs)s) loaded at %(port)s, a high-risk cocaine source country.")),
        (r"^Typical cover load \(HS (?P<hs>\d+): cocoa, coffee, tea, cement or scrap\) loaded at (?P<port>.+), a high-risk cocaine source country\.$",
         N_("Typical cover load (HS %(hs)s: cocoa, coffee, tea, cement or scrap) loaded at %(port)s, a high-risk cocaine source country.")),
        (r"^Transshipped via (?P<hubs>.+): a Caribbean or Central American hub used for cocaine trafficking\.$",
         N_("Transshipped via %(hubs)s: a Caribbean or Central American hub used for cocaine trafficking.")),
        (r"^Cargo from (?P<port>.+) \(South American source country\) routed through West Africa: (?P<hubs>.+)\.$",
         N_("Cargo from %(port)s (South American source country) routed through West Africa: %(hubs)s.")),
        (r"^Vague goods description \(FAK, general cargo, said to contain\): the real contents are not declared\.$",
         N_("Vague goods description (FAK, general cargo, said to contain): the real contents are not declared.")),
        (r"^NVOCC house bill of lading \(actual shipper unknown\) with freight collect or paid by a third party\.$",
         N_("NVOCC house bill of lading (actual shipper unknown) with freight collect or paid by a third party.")),
        (r"^Manifest filed less than 24 hours before arrival\.$", N_("Manifest filed less than 24 hours before arrival.")),
        (r"^Consignee, description or destination amended less than 48 hours before arrival\.$",
         N_("Consignee, description or destination amended less than 48 hours before arrival.")),
        (r"^Declared value per kg far below what the declared goods are worth\.$", N_("Declared value per kg far below what the declared goods are worth.")),
        (r"^Three or more transshipments: circuitous routing exposes the container to rip-on/rip-off\.$",
         N_("Three or more transshipments: circuitous routing exposes the container to rip-on/rip-off.")),
        (r"^Refrigerated container declared with goods that need no refrigeration\.$", N_("Refrigerated container declared with goods that need no refrigeration.")),
        (r"^Tea loaded in South-East Asia: methamphetamine is known to travel in tea packaging\.$",
         N_("Tea loaded in South-East Asia: methamphetamine is known to travel in tea packaging.")),
        (r"^Chemical from a drug-precursor family shipped from outside the established exporters: check the pre-export notification and the end use\.$",
         N_("Chemical from a drug-precursor family shipped from outside the established exporters: check the pre-export notification and the end use.")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs): (?P<n>[\d,]+) manifests? in the last (?P<w>\d+) days$", N_("%(who)s: %(n)s manifests in the last %(w)s days")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs) inspected (?P<n>[\d,]+) times? before$", N_("%(who)s inspected %(n)s times before")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs) never inspected before$", N_("%(who)s never inspected before")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs) involved in (?P<n>[\d,]+) earlier seizures?$", N_("%(who)s involved in %(n)s earlier seizures")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs): (?P<n>[\d,]+) earlier manifests?$", N_("%(who)s: %(n)s earlier manifests")),
        (r"^(?P<who>Consignee|Shipper|Shipper and consignee|Container|Port of loading|Origin country|Transshipment hubs) first seen (?P<n>[\d,]+) days? ago$", N_("%(who)s first seen %(n)s days ago")),
        (r"^(?P<n>[\d,]+) container events? seen on this voyage$", N_("%(n)s container events seen on this voyage")),
        (r"^No earlier manifests for the consignee$", N_("No earlier manifests for the consignee")),
        (r"^No earlier manifests for the shipper$", N_("No earlier manifests for the shipper")),
        (r"^No earlier manifests for this shipper and consignee$", N_("No earlier manifests for this shipper and consignee")),
        (r"^New commodity for this consignee \(no earlier manifests with this HS heading\)$",
         N_("New commodity for this consignee (no earlier manifests with this HS heading)")),
        (r"^New route for this consignee$", N_("New route for this consignee")),
        (r"^Routing never seen before on this lane$", N_("Routing never seen before on this lane")),
        (r"^Refrigerated \(reefer\) container$", N_("Refrigerated (reefer) container")),
        (r"^Vague goods description \(FAK, general cargo, said to contain\)$", N_("Vague goods description (FAK, general cargo, said to contain)")),
        (r"^House bill of lading: the actual shipper is hidden behind a forwarder \(NVOCC\)$",
         N_("House bill of lading: the actual shipper is hidden behind a forwarder (NVOCC)")),
        (r"^Freight collect or paid by a third party$", N_("Freight collect or paid by a third party")),
        (r"^Freight paid by a third party$", N_("Freight paid by a third party")),
        (r"^Container stayed (?P<d>.+) at the port of loading before loading$", N_("Container stayed %(d)s at the port of loading before loading")),
        (r"^Container stayed (?P<d>.+) at (?P<hub>.+) \(transshipment hub\)$", N_("Container stayed %(d)s at %(hub)s (transshipment hub)")),
        (r"^Container stayed (?P<d>.+) at a transshipment hub$", N_("Container stayed %(d)s at a transshipment hub")),
        (r"^Seal number differs between documents and terminal events \((?P<n>[\d,]+) events?\)$",
         N_("Seal number differs between documents and terminal events (%(n)s events)")),
        (r"^Declared value per kg (?P<rel>.+) the norm for these goods$", N_("Declared value per kg %(rel)s the norm for these goods")),
        (r"^Gross mass (?P<rel>.+) the norm for these goods$", N_("Gross mass %(rel)s the norm for these goods")),
        (r"^(?P<n>[\d,]+) transshipments? on the declared route$", N_("%(n)s transshipments on the declared route")),
        (r"^Route (?P<x>[\d.,]+) times the direct distance$", N_("Route %(x)s times the direct distance")),
        (r"^Shipped from (?P<country>.+), a country with a high past seizure rate \((?P<rate>.+)\)$",
         N_("Shipped from %(country)s, a country with a high past seizure rate (%(rate)s)")),
        (r"^Loaded in (?P<port>.+), a port with a high past seizure rate \((?P<rate>.+)\)$",
         N_("Loaded in %(port)s, a port with a high past seizure rate (%(rate)s)")),
        (r"^Transshipped via (?P<hub>.+), a hub with a high past seizure rate \((?P<rate>.+)\)$",
         N_("Transshipped via %(hub)s, a hub with a high past seizure rate (%(rate)s)")),
        # change in a known trader's behaviour, hierarchical priors, anomaly score (issue 15; targeting.explain)
        (r"^New origin country for this consignee$", N_("New origin country for this consignee")),
        (r"^Consignee received goods from this origin country (?P<n>[\d,]+) times? before$",
         N_("Consignee received goods from this origin country %(n)s times before")),
        (r"^New port of loading for this consignee$", N_("New port of loading for this consignee")),
        (r"^Consignee received goods from this port of loading (?P<n>[\d,]+) times? before$",
         N_("Consignee received goods from this port of loading %(n)s times before")),
        (r"^New kind of goods for this consignee$", N_("New kind of goods for this consignee")),
        (r"^Consignee received this kind of goods (?P<n>[\d,]+) times? before$", N_("Consignee received this kind of goods %(n)s times before")),
        (r"^New kind of goods for this shipper$", N_("New kind of goods for this shipper")),
        (r"^Shipper sent this kind of goods (?P<n>[\d,]+) times? before$", N_("Shipper sent this kind of goods %(n)s times before")),
        (r"^Origin with a high past seizure rate, learned from its port, country and region \((?P<rate>.+)\)$",
         N_("Origin with a high past seizure rate, learned from its port, country and region (%(rate)s)")),
        (r"^Goods with a high past seizure rate, learned from this HS code and similar goods \((?P<rate>.+)\)$",
         N_("Goods with a high past seizure rate, learned from this HS code and similar goods (%(rate)s)")),
        (r"^These goods from this origin or its region had a high past seizure rate \((?P<rate>.+)\)$",
         N_("These goods from this origin or its region had a high past seizure rate (%(rate)s)")),
        (r"^Value, mass, packing and transit time usual for these goods and this lane$",
         N_("Value, mass, packing and transit time usual for these goods and this lane")),
        (r"^Value, mass, packing or transit time unusual for these goods and this lane \((?P<x>.+) times the usual spread\)$",
         N_("Value, mass, packing or transit time unusual for these goods and this lane (%(x)s times the usual spread)")),
        (r"^Manifest amended after filing$", N_("Manifest amended after filing")),
        (r"^Consignee, description, destination or notify party amended less than 72 hours before arrival$",
         N_("Consignee, description, destination or notify party amended less than 72 hours before arrival")),
        (r"^Manifest filed after the vessel left the port of loading \(24-hour rule breached\)$",
         N_("Manifest filed after the vessel left the port of loading (24-hour rule breached)")),
        (r"^Random selection for quality control \(unbiased sample\)$", N_("Random selection for quality control (unbiased sample)")),
        # INTEGRITY slice (features.integrity.integrity_reasons)
        (r"^Seal replaced: (?P<n>[\d,]+) seal changes? since loading \(usual: none\)$",
         N_("Seal replaced: %(n)s seal changes since loading (usual: none)")),
        (r"^Seal replaced: (?P<n>[\d,]+) seal changes? since loading \(usual: up to (?P<high>[\d,]+)\)$",
         N_("Seal replaced: %(n)s seal changes since loading (usual: up to %(high)s)")),
        (r"^Stayed (?P<h>[\d,]+) h at the origin terminal (?P<port>\S+) \(usual (?P<low>[\d,]+)–(?P<high>[\d,]+) h at all ports of loading\)$",
         N_("Stayed %(h)s h at the origin terminal %(port)s (usual %(low)s–%(high)s h at all ports of loading)")),
        (r"^Stayed (?P<h>[\d,]+) h at the origin terminal (?P<port>\S+) \(usual (?P<low>[\d,]+)–(?P<high>[\d,]+) h\)$",
         N_("Stayed %(h)s h at the origin terminal %(port)s (usual %(low)s–%(high)s h)")),
        (r"^Gate-in only (?P<h>[\d,]+) h before loading at (?P<port>\S+) \(usual (?P<low>[\d,]+)–(?P<high>[\d,]+) h at all ports of loading\)$",
         N_("Gate-in only %(h)s h before loading at %(port)s (usual %(low)s–%(high)s h at all ports of loading)")),
        (r"^Gate-in only (?P<h>[\d,]+) h before loading at (?P<port>\S+) \(usual (?P<low>[\d,]+)–(?P<high>[\d,]+) h\)$",
         N_("Gate-in only %(h)s h before loading at %(port)s (usual %(low)s–%(high)s h)")),
        (r"^Stayed (?P<h>[\d,]+) h at a transshipment hub \(usual up to (?P<high>[\d,]+) h at all hubs\)$",
         N_("Stayed %(h)s h at a transshipment hub (usual up to %(high)s h at all hubs)")),
        (r"^Stayed (?P<h>[\d,]+) h at a transshipment hub \(usual up to (?P<high>[\d,]+) h via (?P<hub>\S+)\)$",
         N_("Stayed %(h)s h at a transshipment hub (usual up to %(high)s h via %(hub)s)")),
        # precursor controls (targeting.kernel.precursor_hits, reasons from features.precursors)
        (r"^Precursor (?P<substance>.+) \(HS (?P<hs>\d+), (?P<control>[^()]+)\) with no matching pre-export notification from (?P<origin>[A-Z]{2}) to (?P<dest>[A-Z]{2})$",
         N_("Precursor %(substance)s (HS %(hs)s, %(control)s) with no matching pre-export notification from %(origin)s to %(dest)s")),
        (r"^HS (?P<hs>\d+) is where (?P<substance>.+) \(HS (?P<family>\d+), (?P<control>[^()]+)\) is misdeclared, and no pre-export notification from (?P<origin>[A-Z]{2}) to (?P<dest>[A-Z]{2}) covers it$",
         N_("HS %(hs)s is where %(substance)s (HS %(family)s, %(control)s) is misdeclared, and no pre-export notification from %(origin)s to %(dest)s covers it")),
        (r"^(?P<substance>.+): declared (?P<kg>[\d,]+) kg gross, (?P<x>[\d.]+) times the quantity notified in (?P<notice>.+)$",
         N_("%(substance)s: declared %(kg)s kg gross, %(x)s times the quantity notified in %(notice)s")),
    )
)


_TRANSLATED_VALUES = ("who", "control")
"""Pattern values that are themselves catalogue messages (subjects, precursor control labels)."""


def translate_reason(reason: str, gettext: Callable[[str], str]) -> str:
    """``reason`` in the language of ``gettext`` when a pattern of :data:`REASON_PATTERNS` knows it, else unchanged."""
    for pattern, message in REASON_PATTERNS:
        match = pattern.match(reason)
        if match:
            values = {k: gettext(v) if k in _TRANSLATED_VALUES else v for k, v in match.groupdict().items()}
            try:
                return gettext(message) % values
            except (KeyError, ValueError, TypeError):
                return reason
    return reason


VOCABULARY = (
    # selection sources, exam types, results, seizure categories, seal states, roles, history links
    N_("WATCHLIST"), N_("RULE"), N_("MODEL"), N_("INTEGRITY"), N_("RANDOM"), N_("OFFICER"), N_("NII"), N_("PHYSICAL"),
    N_("NO_FINDING"), N_("DISCREPANCY"), N_("SEIZURE"), N_("COCAINE"), N_("HEROIN"), N_("METHAMPHETAMINE"), N_("PRECURSOR"),
    N_("NPS"), N_("CANNABIS"), N_("COUNTERFEIT"), N_("WILDLIFE"), N_("OTHER"), N_("INTACT"), N_("BROKEN"), N_("MISMATCH"),
    N_("MISSING"), N_("NOT_CHECKED"), N_("officer"), N_("data_scientist"), N_("auditor"), N_("admin"),
    N_("container"), N_("shipper"), N_("consignee"), N_("Container"), N_("Shipper and consignee"), N_("Port of loading"),
    N_("Origin country"), N_("Transshipment hubs"),
    N_("1988 Convention Table I"), N_("1988 Convention Table II"), N_("non-scheduled, under special surveillance"),
    # risk bands and messages shown through variables
    N_("Intelligence hit"), N_("Very high"), N_("High"), N_("Elevated"), N_("Low"),
    N_("Too many sign-in attempts from this computer. Wait a few minutes."), N_("The sign-in form expired. Please try again."),
    N_("This account is locked after too many failed attempts. Try again in 15 minutes or ask an administrator."),
    N_("Wrong username or password."), N_("You are not permitted to open this page."),
    N_("This form has expired or did not come from this site. Reload the page and try again."), N_("Page not found."),
    N_("Unknown language."), N_("Page"), N_("Printed by"), N_("IMPORT"), N_("EXPORT"), N_("TRANSSHIPMENT"),
)
"""Words the pages show through variables (codes, bands, messages), marked for the catalogues."""
