// The Lua scripts of rateLimit's shared connection counts (shared-count.ts): each admission, leave
// and heartbeat is one script, so Redis runs it whole and alone, and two nodes admitting a user's
// sockets at once never both see room for one. Keys, under the scope's prefix P (its `{…}` hash
// tag keeps them in one slot):
//   P:nodes              sorted set node ID → its last heartbeat (ms, on Redis's own clock)
//   P:<by>:<key>         sorted set "<node>|<socket ID>" → when admitted: one user's (or one
//                        session digest's) connected sockets on every node; gone when empty
//   P:node:<node>        set of the count keys a node has sockets in (what a reap walks)
// A node whose heartbeat is older than the node timeout is dead: an admission ignores (and drops)
// its sockets at once, a heartbeat of any node reaps it whole. No session ID is ever written: a
// session is counted under its digest.

/** Now in ms on Redis's clock (TIME: every node's heartbeats and admissions read the same one). */
const NOW = `if redis.replicate_commands then redis.replicate_commands() end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function nodeOf(m) return string.match(m, '^([^|]*)|') or '' end
`;

/**
 * ARGV: prefix, node, count key, member, max, end oldest ('1' or '0'), node timeout ms. Returns
 * { admitted (1 or 0), admitted at, the members ended to make room… }. The node's own heartbeat
 * is written first: a node that admits is alive.
 */
export const ADMIT_SCRIPT = `${NOW}local p, node, key, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max, endOldest, timeout = tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7])
local t = now()
redis.call('ZADD', p .. ':nodes', t, node)
local live, alive = {}, {}
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  local n = nodeOf(m)
  if alive[n] == nil then
    local beat = redis.call('ZSCORE', p .. ':nodes', n)
    alive[n] = beat ~= false and tonumber(beat) >= t - timeout
  end
  if not alive[n] then redis.call('ZREM', key, m)
  elseif m ~= member then live[#live + 1] = m end
end
local result = {1, t}
if #live >= max then
  if not endOldest then return {0, t} end
  for i = 1, #live - max + 1 do
    redis.call('ZREM', key, live[i])
    result[#result + 1] = live[i]
  end
end
redis.call('ZADD', key, t, member)
redis.call('SADD', p .. ':node:' .. node, key)
return result
`;

/** ARGV: prefix, node, count key, member. The socket is gone; the node's set forgets an empty key. */
export const LEAVE_SCRIPT = `${NOW}local p, node, key, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('ZREM', key, member)
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  if nodeOf(m) == node then return 0 end
end
redis.call('SREM', p .. ':node:' .. node, key)
return 1
`;

/**
 * ARGV: prefix, node, node timeout ms. The node's heartbeat, then a reap of every dead node.
 * Returns 1 when the node was not there (its first beat, or it was reaped: it writes its sockets
 * again).
 */
export const HEARTBEAT_SCRIPT = `${NOW}local p, node, timeout = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = now()
local added = redis.call('ZADD', p .. ':nodes', t, node)
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', p .. ':nodes', '-inf', t - timeout)) do
  for _, key in ipairs(redis.call('SMEMBERS', p .. ':node:' .. dead)) do
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if nodeOf(m) == dead then redis.call('ZREM', key, m) end
    end
  end
  redis.call('DEL', p .. ':node:' .. dead)
  redis.call('ZREM', p .. ':nodes', dead)
end
return added
`;

/** ARGV: prefix, node, count key, member, admitted at. A socket written again after a reap. */
export const RESTORE_SCRIPT = `redis.call('ZADD', ARGV[3], 'NX', ARGV[5], ARGV[4])
redis.call('SADD', ARGV[1] .. ':node:' .. ARGV[2], ARGV[3])
return 1
`;
