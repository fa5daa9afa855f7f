-- Signed images by signer identity and workflow (as the signing certificates claim: NOT verified).
-- Documents signed with a key and no certificate (cosign sign --key) say no identity: one row, `(a key)`.
WITH top AS (
    SELECT owner_login, package_name, digest
    FROM ghcr.manifests
    WHERE index_digest IS NULL AND kind IN ('index', 'image') AND subject_digest IS NULL
), members AS (
    SELECT owner_login, package_name, digest AS top_digest, digest AS member FROM top
    UNION ALL
    SELECT owner_login, package_name, index_digest, digest FROM ghcr.manifests WHERE index_digest IS NOT NULL
)
SELECT coalesce(a.signer_identity, '(a key)')                                     AS signer,
       a.signer_workflow                                                         AS workflow,
       a.signer_issuer                                                           AS issuer,
       count(DISTINCT mem.owner_login || '/' || mem.package_name || '@' || mem.top_digest) AS images,
       string_agg(DISTINCT mem.owner_login || '/' || mem.package_name, ', '
                  ORDER BY mem.owner_login || '/' || mem.package_name)      AS packages,
       string_agg(DISTINCT a.source || ' ' || a.kind, ', '
                  ORDER BY a.source || ' ' || a.kind)                      AS documents,
       max(a.signed_at)                                                          AS last_signed_at
FROM ghcr.attestations a
JOIN members mem
  ON mem.owner_login = a.owner_login AND mem.package_name = a.package_name AND mem.member = a.subject_digest
JOIN top ON top.owner_login = mem.owner_login AND top.package_name = mem.package_name AND top.digest = mem.top_digest
WHERE a.signer_identity IS NOT NULL OR a.signed
GROUP BY ALL
ORDER BY images DESC, signer, workflow;
