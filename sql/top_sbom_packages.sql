-- The software packages found in the most images (from the SBOMs: SPDX packages, CycloneDX components).
WITH top AS (
    SELECT owner_login, package_name, digest
    FROM ghcr.manifests
    WHERE index_digest IS NULL AND kind IN ('index', 'image') AND subject_digest IS NULL
), members AS (
    SELECT owner_login, package_name, digest AS top_digest, digest AS member FROM top
    UNION ALL
    SELECT owner_login, package_name, index_digest, digest FROM ghcr.manifests WHERE index_digest IS NOT NULL
)
SELECT s.name,
       s.purl_type                                                               AS type,
       count(DISTINCT mem.owner_login || '/' || mem.package_name || '@' || mem.top_digest) AS images,
       count(DISTINCT s.owner_login || '/' || s.package_name)                   AS packages,
       string_agg(DISTINCT s.version, ', ' ORDER BY s.version)                  AS versions
FROM ghcr.sbom_packages s
JOIN members mem
  ON mem.owner_login = s.owner_login AND mem.package_name = s.package_name AND mem.member = s.subject_digest
JOIN top ON top.owner_login = mem.owner_login AND top.package_name = mem.package_name AND top.digest = mem.top_digest
GROUP BY ALL
ORDER BY images DESC, s.name, type
LIMIT 15;
