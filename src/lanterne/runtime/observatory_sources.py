"""A published dataset enters the observatory only from a source a person approved (GV-05).

A source is identified by the sha256 of its mapping file, the bytes `lanterne governance approve
--what observatory_source --file MAP.yml` hashes. The mapping, not the data file, is what a
review looks at: it says who published the data, under which licence, which columns are read
(the others never are) and how categories and reporting channels are read. A new month of the
same export goes in under the same approval; a new publisher, a column newly read or a category
read differently is a new mapping, so a new source, refused until approved. Comments count too:
the approval is of the file as it was reviewed.

The check lives here, above both packages, because the observatory and the accountability
services are siblings that do not import each other (`docs/architecture.md`): `ingest_source` asks
the governance register, then runs the observatory's ingest and records on the dataset change
which governance record let it in. The cameras' own counts (`lanterne observatory
import-cameras`) are no new source: the cameras and zones they come from are approved as `zones`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lanterne.accountability.governance import (
    Approval,
    Change,
    Governance,
    GovernanceError,
    source_refusal,
)
from lanterne.core.assets import sha256_file

if TYPE_CHECKING:
    from lanterne.observatory.ingest import IngestReport
    from lanterne.runtime.site import Site


def source_sha256(mapping_file: Path) -> str:
    """What identifies an observatory source: the sha256 of its mapping file's bytes."""
    if not mapping_file.is_file():
        raise GovernanceError(f"{mapping_file}: mapping file not found; pass the source's mapping (YAML)")
    return sha256_file(mapping_file)


def approved_source(site: Site, mapping_file: Path) -> Approval:
    """The governance record that approves the source of `mapping_file`; `GovernanceError`, one
    line naming its hash and the command, when none counts (unsigned, edited, or naming no DPIA
    and FRIA)."""
    found = Governance(site.store.engine, site.audit).approval(
        Change.OBSERVATORY_SOURCE, source_sha256(mapping_file)
    )
    if not isinstance(found, Approval):
        raise GovernanceError(source_refusal(str(mapping_file), found))
    return found


def ingest_source(
    site: Site, file: Path, mapping_file: Path, *, user_id: str, replace: bool = False
) -> IngestReport:
    """Ingest `file` through `mapping_file` into the site's observatory once its source is
    approved; the dataset change on the audit log names the mapping file's hash and the record.
    Nothing is read, and the store is not opened, before the approval is found."""
    from lanterne.observatory.ingest import ingest_recorded
    from lanterne.observatory.mapping import load_mapping

    approval = approved_source(site, mapping_file)
    mapping = load_mapping(mapping_file)
    if sha256_file(mapping_file) != approval.sha256:
        # The file changed between the check and its reading: what would load is not what was approved.
        raise GovernanceError(f"{mapping_file} changed while it was read; run the ingest again")
    return ingest_recorded(
        site.cfg,
        file,
        mapping,
        user_id=user_id,
        replace=replace,
        audit=site.audit,
        provenance={"mapping_file_sha256": approval.sha256, "governance_record": approval.id},
    )
