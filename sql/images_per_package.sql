-- Images per package: top-level images (an index or a single image), what they hold, and storage.
-- `tags` counts the tags people gave, not the sha256-<hex> ones signing tools write beside them.
SELECT m.owner_login || '/' || m.package_name                                    AS package,
       count(*) FILTER (WHERE m.index_digest IS NULL AND m.kind IN ('index', 'image')
                          AND m.subject_digest IS NULL)                         AS images,
       count(*) FILTER (WHERE m.kind = 'image')                                  AS platform_images,
       count(*) FILTER (WHERE m.kind = 'attestation')                            AS attestations,
       count(*) FILTER (WHERE m.kind = 'signature')                              AS signatures,
       (SELECT count(*) FROM ghcr.tags t  -- not cosign's or the referrers tag schema's sha256-<hex>[.sig|.att] (sha512 too)
         WHERE t.owner_login = m.owner_login AND t.package_name = m.package_name
           AND t.deleted_at IS NULL
           AND NOT regexp_full_match(t.tag, 'sha(256-[0-9a-f]{64}|512-[0-9a-f]{128})(\.[a-z]+)?')) AS tags,
       coalesce(sum(m.total_size) FILTER (WHERE m.kind = 'image'), 0)            AS image_bytes
FROM ghcr.manifests m
GROUP BY m.owner_login, m.package_name
ORDER BY package;
