"""UN/EDIFACT CUSCAR (customs cargo report, D.95B as used by the WCO Cargo Targeting System) -> ``manifests`` rows.

One row per container (EQD) per consignment (CNI) per message. Segments read:

=========================  ===================================================
Segment                    Contract column(s)
=========================  ===================================================
BGM (1004 document number) ``manifest_id`` prefix: ``<BGM 1004>-<CNI 1490>-<container>``
DTM+137 (document date)    ``filed_at``; also ``booked_at`` (CUSCAR carries no booking date)
TDT+20                     ``voyage`` (8028), ``carrier`` (C040 3127), ``vessel_imo`` (C222 8213 when 7 digits)
LOC+9 / +11 / +13          ``port_of_loading`` / ``port_of_discharge`` / ``transshipment_ports`` (in order)
LOC+88 / +7                ``place_of_receipt`` / ``place_of_delivery`` (header or consignment)
DTM+133 / +132             ``etd`` / ``eta``
CNI (1490, 1004)           consignment sequence, ``master_bl``
RFF+BH                     ``house_bl``
NAD+CZ / +CN / +N1         shipper / consignee / notify: id (C082 3039), name (C080), country (3207)
CPI (4237)                 ``freight_payment`` (P -> PP, C -> CC, or PP/CC/TP as sent)
MOA+40 or +44              ``declared_value``, ``currency``
GID (C213 7224)            ``packages``
FTX+AAA                    ``goods_description``
PIA (C212 7140, type HS)   ``hs_code``
MEA+AAE+G (KGM/TNE/LBR)    ``gross_mass_kg`` (after an EQD: that container's gross mass)
MEA+AAE+VGM                ``verified_gross_mass_kg``
EQD+CN                     ``container_number`` (8260), ``container_type`` (C224 8155)
SEL                        ``seal_number`` (the first one)
TMP                        ``reefer`` (also true for a reefer size-type code)
=========================  ===================================================

A bad segment quarantines the rows it belongs to (header: every row of the
message; consignment: its rows; equipment: its row), naming the segment and
element. Missing required values are left empty and quarantined by the
ordinary contract rules.
"""

from __future__ import annotations

from features.data.adapters.edifact import Located, RowErrors, component, dtm_value

_UNITS = {"KGM": 1.0, "TNE": 1000.0, "LBR": 0.45359237}
_PAYMENT = {"P": "PP", "C": "CC", "PP": "PP", "CC": "CC", "TP": "TP"}
_PARTY = {"CZ": "shipper", "CN": "consignee", "N1": "notify"}


def _mass(seg: Located, mt: str, errors: RowErrors) -> str | None:
    unit, value = component(seg, 3, 0), component(seg, 3, 1)
    try:
        return repr(float(value) * _UNITS[unit or "KGM"])  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError):
        errors.add(f"{seg.where(mt, 3, 'C174 measure')}: {unit}:{value} is not a mass in KGM, TNE or LBR")
        return None


def _party(seg: Located) -> dict[str, str | None]:
    """Identifier, name and country of a NAD segment."""
    role = _PARTY[component(seg, 1) or ""]
    name_parts = [component(seg, 4, i) for i in range(5)] if len(seg.elements) >= 4 else []
    name = " ".join(p for p in name_parts if p) or component(seg, 3, 0)
    return {f"{role}_id": component(seg, 2, 0), f"{role}_name": name, f"{role}_country": component(seg, 9)}


class _Message:
    """State while reading one CUSCAR message."""

    def __init__(self, mt: str) -> None:
        self.mt = mt
        self.header: dict[str, object] = {"transshipment_ports": []}
        self.header_errors = RowErrors()
        self.consignments: list[tuple[dict, RowErrors, list[tuple[dict, RowErrors]]]] = []

    def target(self) -> tuple[dict, RowErrors]:
        """Where a segment's values go: the current container, else the current consignment, else the header."""
        if self.consignments:
            values, errors, containers = self.consignments[-1]
            return (values, errors)
        return self.header, self.header_errors

    def goods_target(self) -> tuple[dict, RowErrors]:
        """Mass and seal segments after an EQD belong to that container."""
        if self.consignments and self.consignments[-1][2]:
            return self.consignments[-1][2][-1]
        return self.target()

    def read(self, seg: Located) -> None:  # noqa: C901 - one branch per segment tag
        mt = self.mt
        values, errors = self.target()
        q = component(seg, 1)
        if seg.tag == "BGM":
            self.header["document"] = component(seg, 2)
        elif seg.tag == "DTM":
            qualifier, when = dtm_value(seg, mt, errors)
            key = {"137": "filed_at", "133": "etd", "132": "eta"}.get(qualifier or "")
            if key:
                values[key] = when
        elif seg.tag == "TDT" and q == "20":
            self.header["voyage"] = component(seg, 2)
            self.header["carrier"] = component(seg, 5, 0)
            vessel = component(seg, 8, 0)
            self.header["vessel_imo"] = vessel if vessel and vessel.isdigit() and len(vessel) == 7 else None
        elif seg.tag == "LOC":
            code = component(seg, 2, 0)
            if q == "13":
                values.setdefault("transshipment_ports", [])
                values["transshipment_ports"].append(code)  # type: ignore[union-attr]
            elif q in ("9", "11", "88", "7"):
                values[{"9": "port_of_loading", "11": "port_of_discharge", "88": "place_of_receipt", "7": "place_of_delivery"}[q]] = code
        elif seg.tag == "CNI":
            self.consignments.append(({"cni": component(seg, 1), "master_bl": component(seg, 2, 0)}, RowErrors(), []))
        elif seg.tag == "RFF" and q == "BH":
            values["house_bl"] = component(seg, 1, 1)
        elif seg.tag == "NAD" and q in _PARTY:
            values.update(_party(seg))
        elif seg.tag == "CPI":
            code = component(seg, 3)
            if code not in _PAYMENT:
                errors.add(f"{seg.where(mt, 3, '4237 payment arrangement')}: {code!r} is not P (prepaid) or C (collect)")
            values["freight_payment"] = _PAYMENT.get(code or "")
        elif seg.tag == "MOA" and q in ("40", "44"):
            values["declared_value"], values["currency"] = component(seg, 1, 1), component(seg, 1, 2)
        elif seg.tag == "GID":
            values["packages"] = component(seg, 2, 0)
        elif seg.tag == "FTX" and q == "AAA":
            parts = [component(seg, 4, i) for i in range(5)]
            values["goods_description"] = " ".join(p for p in parts if p)
        elif seg.tag == "PIA":
            values["hs_code"] = component(seg, 2, 0)
        elif seg.tag == "EQD" and q == "CN":
            if not self.consignments:
                self.header_errors.add(f"{seg.where(mt, 1, '8053 equipment type')}: EQD before any CNI consignment")
                return
            number = component(seg, 2, 0)
            container = {"container_number": number, "container_type": component(seg, 3, 0)}
            row_errors = RowErrors()
            if number is None:
                row_errors.add(f"{seg.where(mt, 2, '8260 container number')}: missing")
            self.consignments[-1][2].append((container, row_errors))
        elif seg.tag == "MEA":
            target, target_errors = self.goods_target()
            kind = component(seg, 2, 0)
            if kind == "VGM":
                target["verified_gross_mass_kg"] = _mass(seg, mt, target_errors)
            elif kind in ("G", "AAB"):
                target["gross_mass_kg"] = _mass(seg, mt, target_errors)
        elif seg.tag == "SEL":
            target, _ = self.goods_target()
            target.setdefault("seal_number", component(seg, 1))
        elif seg.tag == "TMP":
            target, _ = self.goods_target()
            target["reefer"] = "true"

    def rows(self) -> list[dict[str, object]]:
        header = {k: v for k, v in self.header.items() if k != "document"}
        document = self.header.get("document") or "CUSCAR"
        out = []
        for consignment, c_errors, containers in self.consignments:
            for container, e_errors in containers or [({}, RowErrors())]:
                row = {**header, **{k: v for k, v in consignment.items() if k != "cni"}, **container}
                if consignment.get("transshipment_ports"):
                    row["transshipment_ports"] = consignment["transshipment_ports"]
                row.setdefault("booked_at", row.get("filed_at"))
                ctype = str(row.get("container_type") or "")
                row.setdefault("reefer", "true" if len(ctype) >= 3 and ctype[2] == "R" else "false")
                row["manifest_id"] = f"{document}-{consignment.get('cni')}-{row.get('container_number')}"
                row["transshipment_ports"] = ";".join(p for p in row.get("transshipment_ports") or [] if p)  # type: ignore[union-attr]
                reasons = [*self.header_errors.items, *c_errors.items, *e_errors.items]
                row["__errors"] = "; ".join(reasons) if reasons else None
                out.append(row)
        return out


def cuscar_rows(messages: list[tuple[str, list[Located]]]) -> list[dict[str, object]]:
    """Rows of the ``manifests`` table from the CUSCAR messages of an interchange (other message types are refused)."""
    rows: list[dict[str, object]] = []
    for mt, segments in messages:
        message = _Message(mt)
        for seg in segments:
            message.read(seg)
        rows.extend(message.rows())
    return rows
