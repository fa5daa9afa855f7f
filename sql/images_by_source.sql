-- Images by source repository and commit (as provenance and signing certificates claim: NOT verified).
-- From SLSA provenance (BuildKit or GitHub) where there is one, else the signing certificate's repository.
-- An image whose provenance names no source (a local build without VCS information) is `(not stated)`, or
-- `(not read)` when the provenance was not read (over max_document_mb, malformed); only where nothing names one.
WITH top AS (
    SELECT owner_login, package_name, digest
    FROM ghcr.manifests
    WHERE index_digest IS NULL AND kind IN ('index', 'image') AND subject_digest IS NULL
), members AS (
    SELECT owner_login, package_name, digest AS top_digest, digest AS member FROM top
    UNION ALL
    SELECT owner_login, package_name, index_digest, digest FROM ghcr.manifests WHERE index_digest IS NOT NULL
), claims AS (
    SELECT mem.owner_login, mem.package_name, mem.top_digest,
           coalesce(a.source_uri, a.signer_repository,
                    CASE WHEN a.statement_type IS NULL THEN '(not read)' ELSE '(not stated)' END) AS repository,
           coalesce(a.source_revision, a.signer_revision)                        AS revision,
           a.source || ' ' || a.kind                                             AS claimed_by
    FROM ghcr.attestations a
    JOIN members mem
      ON mem.owner_login = a.owner_login AND mem.package_name = a.package_name AND mem.member = a.subject_digest
    JOIN top ON top.owner_login = mem.owner_login AND top.package_name = mem.package_name
            AND top.digest = mem.top_digest
    WHERE coalesce(a.source_uri, a.signer_repository) IS NOT NULL OR a.kind = 'provenance'
)
SELECT repository,
       left(revision, 12)                                                           AS commit,
       owner_login || '/' || package_name                                        AS package,
       left(top_digest, 19)                                                      AS digest,
       (SELECT string_agg(t.tag, ', ' ORDER BY t.tag) FROM ghcr.tags t
         WHERE t.owner_login = c.owner_login AND t.package_name = c.package_name
           AND t.digest = c.top_digest AND t.deleted_at IS NULL)                 AS tags,
       string_agg(DISTINCT claimed_by, ', ' ORDER BY claimed_by)                 AS claimed_by
FROM claims c
WHERE repository NOT IN ('(not stated)', '(not read)')  -- a placeholder only for an image no document names a source of
   OR NOT EXISTS (SELECT 1 FROM claims s
                  WHERE s.owner_login = c.owner_login AND s.package_name = c.package_name
                    AND s.top_digest = c.top_digest AND s.repository NOT IN ('(not stated)', '(not read)'))
GROUP BY ALL
ORDER BY repository, commit, package, digest;
