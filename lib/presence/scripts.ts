// The Lua scripts of shared presence (shared.ts): each join, leave, heartbeat and reap is one
// script, so Redis runs it whole and alone. Keys, under the scope's prefix P (its `{…}` hash tag
// keeps them in one slot):
//   P:online          set of the user keys online anywhere (count: SCARD, isOnline: SISMEMBER)
//   P:user:<key>      hash node ID → that node's connections of the user (0 while in its grace)
//   P:summary         hash user key → JSON { user, since }: the userData summary, set at the join
//   P:total           hash user key → their connections on every node (the P:user:<key> sum;
//                     its increments go through %d: a Lua number -0 would reach Redis as "-0")
//   P:node:<node>     set of the user keys a node holds (what a reap of that node walks)
//   P:nodes           sorted set node ID → its last heartbeat (ms, on Redis's own clock)
//   P:events          the channel: JSON [type, userKey, summary JSON]
// No session ID is ever written: the user key is what the app's serializeUser stored.

/** Now in ms on Redis's clock (TIME: every node's heartbeats and reaps read the same clock). */
// Redis before 5 refuses writes after TIME unless the script replicates its commands.
const NOW = `if redis.replicate_commands then redis.replicate_commands() end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** A node lets go of a user: their leave, published, if no other node holds them. */
const DROP = `local function drop(p, node, key)
  local u = p .. ':user:' .. key
  local had = redis.call('HGET', u, node)
  if not had then return 0 end
  redis.call('HDEL', u, node)
  redis.call('HINCRBY', p .. ':total', key, string.format('%d', -tonumber(had)))
  if redis.call('HLEN', u) > 0 then return 0 end
  redis.call('HDEL', p .. ':total', key)
  redis.call('SREM', p .. ':online', key)
  local s = redis.call('HGET', p .. ':summary', key)
  redis.call('HDEL', p .. ':summary', key)
  redis.call('PUBLISH', p .. ':events', cjson.encode({'leave', key, s or 'null'}))
  return 1
end
local function reap(p, node)
  redis.call('ZREM', p .. ':nodes', node)
  local left = 0
  for _, key in ipairs(redis.call('SMEMBERS', p .. ':node:' .. node)) do
    left = left + drop(p, node, key)
  end
  redis.call('DEL', p .. ':node:' .. node)
  return left
end
`;

/**
 * ARGV: prefix, node, user key, connections, summary. Publishes the user's join if they are new.
 * 1: the node was not in the heartbeat set (reaped while alive: Redis or the node stalled longer
 * than the expiry), and is now, so that a crash before its next heartbeat is still reaped; the
 * node then writes its other users again (the reap let them go), as the heartbeat's own 1 says.
 */
export const JOIN_SCRIPT = `${NOW}local p, node, key = ARGV[1], ARGV[2], ARGV[3]
local added = redis.call('ZADD', p .. ':nodes', 'NX', now(), node)
local u = p .. ':user:' .. key
local had = tonumber(redis.call('HGET', u, node) or '0')
redis.call('HSET', u, node, ARGV[4])
redis.call('HINCRBY', p .. ':total', key, string.format('%d', tonumber(ARGV[4]) - had))
redis.call('SADD', p .. ':node:' .. node, key)
if redis.call('SADD', p .. ':online', key) == 1 then
  redis.call('HSET', p .. ':summary', key, ARGV[5])
  redis.call('PUBLISH', p .. ':events', cjson.encode({'join', key, ARGV[5]}))
end
return added
`;

/** ARGV: prefix, node, user key. 1: the user's leave (published): no node holds them now. */
export const LEAVE_SCRIPT = `${DROP}local p, node, key = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', p .. ':node:' .. node, key)
return drop(p, node, key)
`;

/**
 * ARGV: prefix, node. The node's heartbeat; 1 when it was not there (its first, or it was reaped,
 * or Redis lost its data): the node then writes its users again.
 */
export const HEARTBEAT_SCRIPT = `${NOW}return redis.call('ZADD', ARGV[1] .. ':nodes', now(), ARGV[2])
`;

/**
 * ARGV: prefix, expiry ms. Reaps every node whose heartbeat is older than the expiry: one script,
 * so each dead node is reaped once, by whichever node runs it first. Returns the leaves published.
 */
export const REAP_SCRIPT = `${NOW}${DROP}local p = ARGV[1]
local left = 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', p .. ':nodes', '-inf', now() - tonumber(ARGV[2]))) do
  left = left + reap(p, node)
end
return left
`;

/** ARGV: prefix, node. A node that closes lets go of all its users at once. */
export const CLOSE_SCRIPT = `${DROP}return reap(ARGV[1], ARGV[2])
`;
