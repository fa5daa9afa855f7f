-- The largest images (config plus layers, compressed bytes as stored in the registry).
SELECT owner_login || '/' || package_name                                        AS package,
       left(digest, 19)                                                          AS digest,
       platform_os || '/' || platform_architecture || coalesce('/' || platform_variant, '') AS platform,
       total_size                                                                AS bytes,
       json_array_length(layers)                                                 AS layers
FROM ghcr.manifests
WHERE kind = 'image'
ORDER BY total_size DESC, package, digest
LIMIT 10;
