-- Images without provenance or without a signature (from the attestations stream: buildx, cosign, referrers).
-- Evidence may name the image itself, its index, or any platform image of the index (one signed platform
-- image counts for its index). A signature is a document of kind `signature` (cosign `.sig`, notation): a
-- signed attestation (an SBOM or provenance in a DSSE envelope or sigstore bundle) signs that document,
-- not the image. Signatures are not verified by the tap: one here is one the registry holds, not one
-- that was checked. Images of versions known to be deleted (include_deleted_versions) are left out.
WITH top AS (
    SELECT m.owner_login, m.package_name, m.digest
    FROM ghcr.manifests m
    WHERE m.index_digest IS NULL AND m.kind IN ('index', 'image') AND m.subject_digest IS NULL
      AND NOT EXISTS (SELECT 1 FROM ghcr.package_versions v  -- deleted (known with include_deleted_versions)
                      WHERE v.owner_login = m.owner_login AND v.package_name = m.package_name
                        AND v.digest = m.digest AND v.deleted_at IS NOT NULL)
), members AS (
    SELECT owner_login, package_name, digest AS top_digest, digest AS member FROM top
    UNION ALL
    SELECT owner_login, package_name, index_digest, digest FROM ghcr.manifests WHERE index_digest IS NOT NULL
), evidence AS (
    SELECT mem.owner_login, mem.package_name, mem.top_digest,
           bool_or(a.kind = 'provenance') AS has_provenance,
           bool_or(a.kind = 'signature')           AS has_signature
    FROM members mem
    JOIN ghcr.attestations a
      ON a.owner_login = mem.owner_login AND a.package_name = mem.package_name AND a.subject_digest = mem.member
    GROUP BY ALL
)
SELECT top.owner_login || '/' || top.package_name                                AS package,
       left(top.digest, 19)                                                      AS digest,
       (SELECT string_agg(t.tag, ', ' ORDER BY t.tag) FROM ghcr.tags t
         WHERE t.owner_login = top.owner_login AND t.package_name = top.package_name
           AND t.digest = top.digest AND t.deleted_at IS NULL)                   AS tags,
       coalesce(e.has_provenance, false)                                         AS provenance,
       coalesce(e.has_signature, false)                                          AS signature
FROM top
LEFT JOIN evidence e
  ON e.owner_login = top.owner_login AND e.package_name = top.package_name AND e.top_digest = top.digest
WHERE NOT coalesce(e.has_provenance, false) OR NOT coalesce(e.has_signature, false)
ORDER BY package, tags NULLS LAST, digest;
