-- Which images contain a given software package (by SBOM). Edit the parameter below.
WITH params AS (
    SELECT 'libssl3' AS wanted  -- <== PARAMETER: the package name (SPDX `name`, CycloneDX component name)
), top AS (
    SELECT owner_login, package_name, digest
    FROM ghcr.manifests
    WHERE index_digest IS NULL AND kind IN ('index', 'image') AND subject_digest IS NULL
), members AS (
    SELECT owner_login, package_name, digest AS top_digest, digest AS member FROM top
    UNION ALL
    SELECT owner_login, package_name, index_digest, digest FROM ghcr.manifests WHERE index_digest IS NOT NULL
)
SELECT DISTINCT s.owner_login || '/' || s.package_name                           AS package,
       left(mem.top_digest, 19)                                                  AS image,
       (SELECT string_agg(t.tag, ', ' ORDER BY t.tag) FROM ghcr.tags t
         WHERE t.owner_login = mem.owner_login AND t.package_name = mem.package_name
           AND t.digest = mem.top_digest AND t.deleted_at IS NULL)               AS tags,
       p.platform_os || '/' || p.platform_architecture                           AS platform,
       s.version,
       s.purl
FROM ghcr.sbom_packages s
JOIN params ON s.name = params.wanted
JOIN members mem
  ON mem.owner_login = s.owner_login AND mem.package_name = s.package_name AND mem.member = s.subject_digest
JOIN top ON top.owner_login = mem.owner_login AND top.package_name = mem.package_name AND top.digest = mem.top_digest
LEFT JOIN ghcr.manifests p
  ON p.owner_login = s.owner_login AND p.package_name = s.package_name AND p.digest = s.subject_digest
ORDER BY package, tags NULLS LAST, image, platform;
