"""The simulated world's fixed knowledge: commodities, carriers, regions and trafficking methods.

This is the world's hidden truth about where risk comes from. Feature and model
code must never import it: they have to learn risk from data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Commodity:
    """A legitimately traded commodity.

    ``value_per_kg`` is in USD; ``cargo_kg`` the typical cargo mass of one
    container; ``season_peak`` the month (1-12) of highest volume and
    ``season_amplitude`` the relative swing (0 = flat).
    """

    hs_code: str
    descriptions: tuple[str, ...]
    value_per_kg: float
    cargo_kg: float
    reefer: bool
    size: int  # 20 or 40 (feet)
    packages: int
    origins: tuple[tuple[str, float], ...]  # (country, weight)
    season_peak: int = 1
    season_amplitude: float = 0.0


def _c(hs, desc, vpk, kg, reefer, size, pk, origins, peak=1, amp=0.0):
    return Commodity(hs, tuple(desc), vpk, kg, reefer, size, pk, tuple(origins), peak, amp)


COMMODITIES: tuple[Commodity, ...] = (
    _c("080390", ["FRESH BANANAS", "BANANAS CAVENDISH 18.14KG BOXES", "FRESH GREEN BANANAS"], 0.75, 21000, True, 40, 1080,
       [("EC", 5), ("CO", 3), ("CR", 2.5), ("PA", 1), ("GT", 1), ("HN", 0.6), ("DO", 0.6), ("PE", 0.4)], 3, 0.1),
    _c("080430", ["FRESH PINEAPPLES", "PINEAPPLES MD2"], 0.6, 19000, True, 40, 1500, [("CR", 4), ("PA", 1), ("EC", 0.5), ("GH", 0.5)], 4, 0.1),
    _c("080440", ["FRESH AVOCADOS", "HASS AVOCADOS"], 2.4, 19000, True, 40, 4800, [("PE", 3), ("CO", 1.5), ("CL", 1), ("MX", 1), ("KE", 0.6), ("ZA", 0.5)], 6, 0.4),
    _c("080450", ["FRESH MANGOES", "MANGOES KENT"], 1.6, 18000, True, 40, 4200, [("BR", 2), ("PE", 2), ("CI", 0.5), ("MX", 0.5)], 12, 0.5),
    _c("080610", ["FRESH TABLE GRAPES", "GRAPES RED GLOBE"], 2.2, 18500, True, 40, 2200, [("CL", 2), ("PE", 1.5), ("ZA", 1.5), ("IN", 0.5)], 2, 0.5),
    _c("080510", ["FRESH ORANGES", "NAVEL ORANGES"], 0.7, 22000, True, 40, 1500, [("ZA", 3), ("MA", 1), ("EG", 2), ("AR", 0.5)], 7, 0.4),
    _c("070960", ["FRESH PEPPERS", "CHILLI PEPPERS"], 1.8, 15000, True, 40, 3000, [("MA", 2), ("EG", 1), ("KE", 0.3)], 1, 0.3),
    _c("030617", ["FROZEN SHRIMP", "FROZEN VANNAMEI SHRIMP HOSO"], 7.5, 24000, True, 40, 2400, [("EC", 3), ("IN", 2), ("VN", 1.5), ("ID", 1)], 1, 0.0),
    _c("020230", ["FROZEN BONELESS BEEF", "FROZEN BEEF CUTS"], 6.5, 25000, True, 40, 1200, [("BR", 3), ("AR", 1.5), ("UY", 1.5)], 1, 0.0),
    _c("090111", ["GREEN COFFEE BEANS", "COFFEE ARABICA NOT ROASTED", "RAW COFFEE IN JUTE BAGS"], 4.2, 19200, False, 20, 320,
       [("BR", 4), ("CO", 2), ("VN", 2), ("HN", 1), ("PE", 1), ("UG", 0.4)], 1, 0.1),
    _c("180100", ["COCOA BEANS", "RAW COCOA BEANS IN BAGS"], 3.3, 25000, False, 20, 400, [("CI", 4), ("GH", 2), ("EC", 1), ("NG", 0.8), ("CM", 0.7)], 11, 0.3),
    _c("090240", ["BLACK TEA", "BLACK TEA IN BULK"], 3.0, 14000, False, 20, 280, [("IN", 2), ("LK", 2), ("KE", 2), ("CN", 1), ("VN", 0.5)], 1, 0.0),
    _c("252329", ["PORTLAND CEMENT", "CEMENT IN BAGS"], 0.07, 26000, False, 20, 520, [("TR", 2), ("VN", 1), ("CN", 1), ("EG", 1)], 1, 0.0),
    _c("720449", ["FERROUS SCRAP", "HMS 1/2 STEEL SCRAP"], 0.35, 24000, False, 20, 1, [("US", 2), ("GB", 1), ("NG", 0.5), ("GH", 0.4)], 1, 0.0),
    _c("440799", ["SAWN TIMBER", "SAWN HARDWOOD"], 0.9, 20000, False, 40, 30, [("BR", 2), ("CM", 1), ("GA", 1), ("MY", 1)], 1, 0.0),
    _c("847130", ["LAPTOP COMPUTERS", "PORTABLE COMPUTERS"], 85.0, 6000, False, 40, 900, [("CN", 5), ("TW", 1), ("VN", 1)], 10, 0.3),
    _c("851713", ["SMARTPHONES", "MOBILE PHONES"], 180.0, 4000, False, 40, 600, [("CN", 4), ("VN", 2), ("IN", 1)], 10, 0.3),
    _c("940360", ["WOODEN FURNITURE", "FURNITURE OF WOOD"], 3.2, 9000, False, 40, 350, [("CN", 3), ("VN", 3), ("ID", 1), ("MY", 1)], 1, 0.0),
    _c("620342", ["MENS COTTON TROUSERS", "COTTON JEANS"], 14.0, 8000, False, 40, 700, [("BD", 4), ("CN", 2), ("PK", 1.5), ("IN", 1.5), ("TR", 1)], 1, 0.0),
    _c("640399", ["FOOTWEAR LEATHER UPPERS", "SHOES"], 22.0, 7000, False, 40, 800, [("CN", 3), ("VN", 3), ("ID", 1), ("IN", 1)], 1, 0.0),
    _c("870899", ["AUTO PARTS", "MOTOR VEHICLE PARTS"], 9.0, 14000, False, 40, 60, [("CN", 2), ("JP", 1), ("KR", 1), ("MX", 1), ("TR", 1), ("US", 1)], 1, 0.0),
    _c("390110", ["POLYETHYLENE GRANULES", "LDPE RESIN"], 1.3, 24750, False, 40, 990, [("SA", 3), ("US", 2), ("AE", 1), ("KR", 1)], 1, 0.0),
    _c("401110", ["NEW PNEUMATIC TYRES", "PASSENGER CAR TYRES"], 4.0, 9000, False, 40, 900, [("CN", 3), ("TH", 2), ("KR", 1), ("JP", 1)], 1, 0.0),
    _c("690721", ["CERAMIC TILES", "PORCELAIN FLOOR TILES"], 0.5, 26000, False, 20, 1200, [("IN", 3), ("CN", 2), ("TR", 1)], 1, 0.0),
    _c("680221", ["MARBLE SLABS", "POLISHED MARBLE"], 0.6, 26000, False, 20, 20, [("TR", 2), ("PK", 1), ("IN", 1), ("EG", 1)], 1, 0.0),
    _c("220421", ["RED WINE IN BOTTLES", "WINE"], 4.5, 19000, False, 20, 1600, [("CL", 2), ("AR", 1.5), ("ZA", 1.5), ("AU", 1), ("US", 0.5)], 1, 0.0),
    _c("151190", ["REFINED PALM OIL", "PALM OLEIN"], 1.0, 24000, False, 20, 1, [("MY", 3), ("ID", 3)], 1, 0.0),
    _c("100630", ["WHITE RICE", "BASMATI RICE"], 0.9, 25000, False, 20, 1000, [("IN", 3), ("PK", 2), ("TH", 2), ("VN", 1)], 1, 0.0),
    _c("200912", ["ORANGE JUICE CONCENTRATE", "FROZEN ORANGE JUICE"], 2.0, 24000, True, 40, 100, [("BR", 4), ("MX", 1)], 1, 0.0),
    _c("291411", ["ACETONE", "ACETONE IN DRUMS"], 1.1, 17000, False, 20, 80, [("CN", 2), ("KR", 1), ("US", 1), ("IN", 1)], 1, 0.0),
    _c("291521", ["ACETIC ACID", "GLACIAL ACETIC ACID"], 0.8, 20000, False, 20, 80, [("CN", 2), ("US", 1), ("SA", 1)], 1, 0.0),
    _c("293299", ["HETEROCYCLIC COMPOUNDS", "ORGANIC CHEMICAL INTERMEDIATE"], 12.0, 12000, False, 20, 60, [("CN", 3), ("IN", 2)], 1, 0.0),
    _c("291439", ["KETONES", "AROMATIC KETONE"], 8.0, 14000, False, 20, 70, [("CN", 2), ("IN", 1), ("DE", 0.3)], 1, 0.0),
    _c("382499", ["CHEMICAL PREPARATIONS", "INDUSTRIAL ADDITIVES"], 3.5, 16000, False, 20, 80, [("CN", 2), ("IN", 1), ("US", 1), ("KR", 1)], 1, 0.0),
    _c("300490", ["MEDICAMENTS PACKED", "PHARMACEUTICAL PRODUCTS"], 60.0, 5000, False, 20, 400, [("IN", 3), ("CN", 1), ("US", 1)], 1, 0.0),
    _c("240220", ["CIGARETTES", "CIGARETTES CONTAINING TOBACCO"], 20.0, 9000, False, 40, 900, [("AE", 1), ("ID", 1)], 1, 0.0),
)
COMMODITY_BY_HS = {c.hs_code: c for c in COMMODITIES}

VAGUE_DESCRIPTIONS = ("FAK", "GENERAL CARGO", "SAID TO CONTAIN GOODS", "STC 20 PACKAGES", "CONSOLIDATED CARGO", "FREIGHT ALL KINDS")

CARRIERS = ("MAEU", "MSCU", "CMDU", "COSU", "HLCU", "ONEY", "EGLV", "YMLU", "HDMU", "ZIMU")
CONTAINER_OWNERS = (
    "MSKU", "MRKU", "MSCU", "MEDU", "CMAU", "CGMU", "CSQU", "CCLU", "HLXU", "HLBU", "ONEU", "EGHU", "EMCU", "YMLU",
    "HDMU", "ZCSU", "TEXU", "TGHU", "GESU", "TCNU", "FCIU", "SEGU", "TRLU", "BMOU", "CAIU", "TLLU", "DFSU", "BEAU",
)
REEFER_OWNERS = ("MNBU", "SZLU", "CXRU", "TRIU", "TTNU", "SEGU", "CAIU")
NVOCC_PREFIXES = ("KNAE", "DHLG", "DSVF", "EXPD", "CEVA", "SCHK", "GEOD", "BOLL")
CURRENCY_BY_COUNTRY = {"CN": "CNY", "IN": "USD", "JP": "JPY", "GB": "GBP", "BR": "USD"}

# Where the PCUs' own country is, for consignee ids and names.
NAME_STEMS = (
    "Andes", "Pacific", "Atlantic", "Golden", "Royal", "Green", "Blue", "Delta", "Orion", "Nova", "Terra", "Sol", "Luna",
    "Alpha", "Omega", "Prime", "Global", "United", "Eastern", "Western", "Northern", "Southern", "Coastal", "Harbor",
    "Summit", "Crown", "Eagle", "Falcon", "Lion", "Tiger", "Jade", "Lotus", "Maple", "Oak", "Cedar", "Palm", "Silver",
)
NAME_TRADES = (
    "Fruit", "Fresh Produce", "Foods", "Trading", "Import Export", "Logistics", "Commodities", "Agro", "Chemicals",
    "Industries", "Textiles", "Electronics", "Supply", "Distribution", "Holdings", "Merchants", "Seafood", "Coffee",
)
LEGAL_FORMS = {
    "NL": "B.V.", "BE": "BV", "DE": "GmbH", "ES": "S.L.", "FR": "SAS", "IT": "S.r.l.", "GB": "Ltd", "EC": "S.A.", "CO": "S.A.S.",
    "PE": "S.A.C.", "BR": "Ltda", "CN": "Co., Ltd.", "IN": "Pvt Ltd", "US": "Inc.", "MX": "S.A. de C.V.",
}

# Transshipment options per origin region: tuples of hub sequences (empty = direct call).
REGION_OF_COUNTRY: dict[str, str] = {}
for _region, _countries in {
    "SA_PACIFIC": "EC PE CL",
    "SA_CARIB": "CO VE GY SR PA CR GT HN DO JM TT NI",
    "SA_ATLANTIC": "BR AR UY PY",
    "MEXICO": "MX",
    "WEST_AFRICA": "CI GH NG CM TG BJ SN GA CG GN SL LR AO",
    "EAST_AFRICA": "KE TZ UG ZA MZ MU DJ",
    "NORTH_AFRICA": "MA EG DZ TN",
    "MED": "TR GR IT ES PT FR IL LB MT HR SI",
    "MIDDLE_EAST": "AE SA OM QA KW IR JO BH",
    "SOUTH_ASIA": "IN PK LK BD",
    "SE_ASIA": "SG MY TH VN ID PH KH MM",
    "EAST_ASIA": "CN HK TW KR JP",
    "OCEANIA": "AU NZ",
    "NORTH_AMERICA": "US CA",
    "NORTH_EUROPE": "GB IE DE NL BE DK SE FI NO PL",
}.items():
    for _country in _countries.split():
        REGION_OF_COUNTRY[_country] = _region

HUB_OPTIONS: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "SA_PACIFIC": ((("PAMIT",), 3), (("PABLB",), 2), (("COCTG",), 2), ((), 2), (("PAMIT", "ESALG"), 1), (("JMKIN",), 0.5)),
    "SA_CARIB": (((), 3), (("COCTG",), 2), (("JMKIN",), 1.5), (("DOCAU",), 1), (("PAMIT",), 1), (("BSFPO",), 0.5)),
    "SA_ATLANTIC": (((), 4), (("ESALG",), 1), (("PTSIE",), 1), (("ESVLC",), 0.5)),
    "MEXICO": (((), 2), (("JMKIN",), 1), (("ESALG",), 1)),
    "WEST_AFRICA": (((), 1), (("TGLFW",), 2), (("MAPTM",), 1.5), (("ESALG",), 1), (("MTMAR",), 0.5)),
    "EAST_AFRICA": (((), 1), (("OMSLL",), 1), (("AEJEA",), 1), (("EGPSD",), 1)),
    "NORTH_AFRICA": (((), 2), (("MAPTM",), 1), (("ESALG",), 1)),
    "MED": (((), 3), (("GRPIR",), 1), (("MTMAR",), 1)),
    "MIDDLE_EAST": (((), 2), (("AEJEA",), 2), (("OMSLL",), 1)),
    "SOUTH_ASIA": (((), 2), (("LKCMB",), 2), (("AEJEA",), 1), (("SGSIN",), 0.5)),
    "SE_ASIA": (((), 3), (("SGSIN",), 2), (("MYTPP",), 1)),
    "EAST_ASIA": (((), 5), (("SGSIN",), 1), (("LKCMB",), 0.5), (("EGPSD",), 0.5)),
    "OCEANIA": (((), 1), (("SGSIN",), 2)),
    "NORTH_AMERICA": (((), 4), (("ESALG",), 0.5)),
    "NORTH_EUROPE": (((), 1),),
}

# Relative size of the main container ports of a country (first port = main gateway).
MAIN_PORTS: dict[str, tuple[tuple[str, float], ...]] = {
    "EC": (("ECGYE", 5), ("ECPSJ", 2), ("ECPBO", 1), ("ECMEC", 0.5)),
    "CO": (("COCTG", 4), ("COBUN", 3), ("COSMR", 1), ("COBAQ", 0.5), ("COTRB", 0.5)),
    "PE": (("PECLL", 4), ("PEPAI", 1)),
    "CR": (("CRMOB", 3), ("CRLIO", 1), ("CRCAL", 0.5)),
    "PA": (("PAMIT", 2), ("PABLB", 2), ("PAONX", 1)),
    "GT": (("GTSTC", 2), ("GTPRQ", 1)),
    "HN": (("HNPCR", 2),),
    "DO": (("DOCAU", 2), ("DOHAI", 1)),
    "BR": (("BRSSZ", 5), ("BRPNG", 2), ("BRRIG", 1), ("BRITJ", 1), ("BRNVT", 1), ("BRSSA", 0.7), ("BRPEC", 0.7), ("BRSUA", 0.5)),
    "CL": (("CLSAI", 3), ("CLVAP", 2)),
    "AR": (("ARBUE", 3),),
    "UY": (("UYMVD", 2),),
    "VE": (("VEPBL", 1), ("VELAG", 0.5)),
    "MX": (("MXZLO", 2), ("MXLZC", 1.5), ("MXVER", 1.5), ("MXATM", 1)),
    "CI": (("CIABJ", 3), ("CISPY", 1)),
    "GH": (("GHTEM", 3), ("GHTKD", 0.5)),
    "NG": (("NGAPP", 2), ("NGTIN", 2), ("NGONN", 1)),
    "CM": (("CMDLA", 2), ("CMKBI", 1)),
    "GA": (("GALBV", 1), ("GAPOG", 0.5)),
    "KE": (("KEMBA", 2),),
    "ZA": (("ZADUR", 3), ("ZACPT", 1.5), ("ZAPLZ", 1), ("ZAZBA", 0.5)),
    "UG": (("KEMBA", 1),),
    "MA": (("MAPTM", 3), ("MACAS", 1.5), ("MAAGA", 1)),
    "EG": (("EGPSD", 2), ("EGALY", 1.5), ("EGDAM", 1)),
    "TR": (("TRAMR", 3), ("TRMER", 2), ("TRIZM", 1.5), ("TRGEM", 1)),
    "AE": (("AEJEA", 4), ("AEKHL", 1)),
    "SA": (("SAJED", 3), ("SADMM", 2)),
    "IN": (("INNSA", 4), ("INMUN", 3), ("INMAA", 1.5), ("INCCU", 0.5), ("INCOK", 0.5)),
    "PK": (("PKKHI", 3), ("PKBQM", 1.5)),
    "LK": (("LKCMB", 3),),
    "BD": (("BDCGP", 3),),
    "CN": (("CNSHA", 5), ("CNNGB", 4), ("CNYTN", 3), ("CNSHK", 2), ("CNTAO", 2.5), ("CNTXG", 1.5), ("CNXMN", 1.5), ("CNNSA", 1.5), ("CNDLC", 1)),
    "TW": (("TWKHH", 3), ("TWKEL", 1)),
    "KR": (("KRPUS", 4), ("KRINC", 1)),
    "JP": (("JPTYO", 2), ("JPYOK", 2), ("JPUKB", 1.5), ("JPNGO", 1.5)),
    "VN": (("VNSGN", 3), ("VNCMT", 2), ("VNHPH", 2)),
    "TH": (("THLCH", 3), ("THBKK", 1)),
    "MY": (("MYPKG", 3), ("MYTPP", 2), ("MYPEN", 0.5)),
    "ID": (("IDTPP", 3), ("IDSUB", 1.5), ("IDSRG", 1)),
    "US": (("USNYC", 3), ("USSAV", 2), ("USHOU", 1.5), ("USCHS", 1), ("USORF", 1)),
    "GB": (("GBFXT", 3), ("GBSOU", 2), ("GBLGP", 1)),
    "AU": (("AUMEL", 2), ("AUSYD", 2), ("AUBNE", 1)),
}
