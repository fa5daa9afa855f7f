-- Signature and provenance coverage per package: images with both, one or neither (the demo's chart).
-- An image is a top-level index or single image; evidence may name it or any platform image of it (one
-- signed platform image counts for its index). A signature is a document of kind `signature` (cosign
-- `.sig`, notation): a signed attestation signs that document, not the image. Signatures are not verified
-- by the tap: one here is one the registry holds. Images of versions known to be deleted are left out
-- (the warehouse learns of deletions with include_deleted_versions); otherwise this is unattested_images.sql
-- counted per package.
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
), images AS (
    SELECT top.owner_login || '/' || top.package_name AS package,
           coalesce(e.has_signature, false)            AS signature,
           coalesce(e.has_provenance, false)           AS provenance
    FROM top
    LEFT JOIN evidence e
      ON e.owner_login = top.owner_login AND e.package_name = top.package_name AND e.top_digest = top.digest
)
SELECT package,
       count(*)                                                   AS images,
       count(*) FILTER (WHERE signature AND provenance)           AS signed_and_provenance,
       count(*) FILTER (WHERE signature AND NOT provenance)       AS signed_only,
       count(*) FILTER (WHERE provenance AND NOT signature)       AS provenance_only,
       count(*) FILTER (WHERE NOT signature AND NOT provenance)   AS neither
FROM images
GROUP BY package
ORDER BY package;
