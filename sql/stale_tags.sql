-- Live tags pointing at images built more than 90 days ago (for an index: its newest platform image).
WITH built AS (
    SELECT m.owner_login, m.package_name, m.digest,
           coalesce(m.image_created,
                    (SELECT max(c.image_created) FROM ghcr.manifests c
                      WHERE c.owner_login = m.owner_login AND c.package_name = m.package_name
                        AND c.index_digest = m.digest))                           AS built_at
    FROM ghcr.manifests m
)
SELECT t.owner_login || '/' || t.package_name                                    AS package,
       t.tag,
       left(t.digest, 19)                                                        AS digest,
       b.built_at,
       date_diff('day', b.built_at, current_date)                                AS age_days
FROM ghcr.tags t
JOIN built b ON b.owner_login = t.owner_login AND b.package_name = t.package_name AND b.digest = t.digest
WHERE t.deleted_at IS NULL
  AND b.built_at < current_date - INTERVAL 90 DAY
ORDER BY age_days DESC, package, t.tag;
