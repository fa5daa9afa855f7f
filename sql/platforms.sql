-- Platforms: how many images are built for each OS/architecture/variant.
SELECT platform_os || '/' || platform_architecture || coalesce('/' || platform_variant, '') AS platform,
       count(*)                                                                  AS images,
       count(DISTINCT owner_login || '/' || package_name)                        AS packages
FROM ghcr.manifests
WHERE kind = 'image'
GROUP BY platform
ORDER BY images DESC, platform;
