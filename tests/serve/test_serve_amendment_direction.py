"""Amendments carry the direction of the list they amend (migration 0007)."""

from __future__ import annotations

from dataclasses import replace

from serve_helpers import PORT, insert_list, sample_list


def test_an_amendment_of_an_export_list_says_export_and_of_a_default_list_import(client, database, make_key):
    officer = make_key("officer", PORT)
    export_list = insert_list(database, replace(sample_list(), direction="EXPORT"))
    import_list = insert_list(database)
    body = {"action": "ADD", "manifest_id": "M-4", "exam_type": "PHYSICAL", "reason": "Seal mismatch seen at the gate"}
    exported = client.post(f"/v1/inspection-lists/{export_list}/amendments", json=body, headers=officer)
    imported = client.post(f"/v1/inspection-lists/{import_list}/amendments", json=body, headers=officer)
    assert (exported.status_code, imported.status_code) == (201, 201), (exported.text, imported.text)
    assert exported.json()["direction"] == "EXPORT" and imported.json()["direction"] == "IMPORT"
    listed = client.get(f"/v1/inspection-lists/{export_list}/amendments", headers=make_key("auditor")).json()
    assert [a["direction"] for a in listed["items"]] == ["EXPORT"]
