-- The operations of the manager's protocol on Redis: a function library (Redis 7's `FUNCTION
-- LOAD`, so that this chunk runs once, not at every call), whose one function `main` the client
-- registers under a name with this file's hash (ops.rs), and calls as `FCALL <name> 1 <prefix>
-- <op> <kinds> <args...>`. Every key of an object starts with `prefix`
-- (`mp:{<namespace>:<slot>}:<id>:`, one hash tag: one slot, its nested containers' too); `kinds` are the kinds the operation applies to, space-separated (''
-- for the manager's own operations); each argument is one value's MessagePack encoding.
--
-- Values are never decoded here (Redis's own cmsgpack loses 64-bit integers): keys and items are
-- compared byte for byte, as the in-memory manager compares encodings, and `add` reads the only
-- encodings it needs, numbers, exactly. Errors are replied as `<Code> <message>`, the codes of
-- docs/manager-protocol.md. Every script checks everything before its first write: Redis does not
-- roll a script back.
--
-- Parts of an object: `m` its meta hash (kind, name, seq, ver, len), `h` a dict's hash (key ->
-- value), `o` a dict's order (key -> the sequence number of its first insertion), `l` a list, `v`
-- a value.

-- The call's keys and arguments, and what they name: set by `main` at each call (Redis runs one
-- call at a time).
local KEYS, ARGV, P, op, kinds, M, H, O, L, V

local TWO32 = 4294967296
local NIL = '\192' -- MessagePack nil
-- Never a MessagePack value (0xc1 is reserved): marks one item of a list while a script works.
local MARK = '\193'

local function fail(code, message)
  error({ err = code .. ' ' .. message })
end

local function arg(i)
  local a = ARGV[2 + i]
  if a == nil then
    fail('BadArguments', 'argument ' .. (i - 1) .. ' missing')
  end
  return a
end

-- The object's kind, checked against the operation's.
-- Whether the object is watched (its changes are logged), and whether a dict has ever had a
-- nested container: read by `kind_of`.
local watched, nests = false, false
-- Removes a nested container and what it nests (defined with nesting, below).
local drop

local function kind_of()
  local meta = redis.call('HMGET', M, 'kind', 'watched', 'nests')
  local kind = meta[1]
  watched, nests = meta[2] == '1', meta[3] == '1'
  if not kind then
    fail('UnknownObject', 'no object at ' .. P .. ' (never made, removed, or the server lost it)')
  end
  if kinds ~= '' and not string.find(' ' .. kinds .. ' ', ' ' .. kind .. ' ', 1, true) then
    fail('NotExposed', 'no operation ' .. op .. ' on a ' .. kind)
  end
  return kind
end

local function changed()
  redis.call('HINCRBY', M, 'ver', 1)
end

-- Logs a change for the watchers, if the object is watched: `[tag, parts...]`, each part an
-- encoding already (a key, a value, an index's `integer`), numbered by `lver`, in the stream
-- `log` (its last 4096 entries, ids `<number>-0`).
local function log_event(event)
  if not watched then
    return
  end
  local n = redis.call('HINCRBY', M, 'lver', 1)
  redis.call('XADD', P .. 'log', 'MAXLEN', 4096, n .. '-0', 'e', event)
end

local function log(tag, ...)
  if watched then
    local parts = { ... }
    log_event(string.char(0x91 + #parts) .. string.char(0xa0 + #tag) .. tag .. table.concat(parts))
  end
end


-- Numbers -------------------------------------------------------------------------------------

-- An encoded number: 'i', hi, lo for an integer (hi * 2^32 + lo, 0 <= lo < 2^32: every 64-bit
-- integer, signed or not, exactly), 'f', x for a float; nil for anything else.
local function number(s)
  local n, b = #s, string.byte(s, 1)
  if not b then
    return nil
  end
  local function small(v)
    if v < 0 then
      return 'i', -1, v + TWO32
    end
    return 'i', 0, v
  end
  if b <= 0x7f and n == 1 then return 'i', 0, b end
  if b >= 0xe0 and n == 1 then return small(b - 256) end
  if b == 0xcc and n == 2 then return 'i', 0, string.byte(s, 2) end
  if b == 0xcd and n == 3 then return 'i', 0, (struct.unpack('>H', s, 2)) end
  if b == 0xce and n == 5 then return 'i', 0, (struct.unpack('>I4', s, 2)) end
  if b == 0xcf and n == 9 then
    local hi, lo = struct.unpack('>I4I4', s, 2)
    return 'i', hi, lo
  end
  if b == 0xd0 and n == 2 then return small((struct.unpack('b', s, 2))) end
  if b == 0xd1 and n == 3 then return small((struct.unpack('>h', s, 2))) end
  if b == 0xd2 and n == 5 then return small((struct.unpack('>i4', s, 2))) end
  if b == 0xd3 and n == 9 then
    local hi, lo = struct.unpack('>i4I4', s, 2)
    return 'i', hi, lo
  end
  if b == 0xca and n == 5 then return 'f', (struct.unpack('>f', s, 2)) end
  if b == 0xcb and n == 9 then return 'f', (struct.unpack('>d', s, 2)) end
  return nil
end

-- An integer's canonical encoding (the smallest, as rmpv writes it).
local function integer(hi, lo)
  if hi == 0 then
    if lo < 128 then return string.char(lo) end
    if lo < 256 then return '\204' .. string.char(lo) end
    if lo < 65536 then return '\205' .. struct.pack('>H', lo) end
    return '\206' .. struct.pack('>I4', lo)
  end
  if hi > 0 then
    return '\207' .. struct.pack('>I4I4', hi, lo)
  end
  if hi == -1 and lo >= 2147483648 then
    local v = lo - TWO32
    if v >= -32 then return string.char(v + 256) end
    if v >= -128 then return '\208' .. struct.pack('b', v) end
    if v >= -32768 then return '\209' .. struct.pack('>h', v) end
    return '\210' .. struct.pack('>i4', v)
  end
  return '\211' .. struct.pack('>i4I4', hi, lo)
end

-- a + b, as the in-memory manager adds (server/data.rs, `add`): integers exactly, the sum
-- between i64::MIN and u64::MAX or `Overflow`; a float on either side makes a float; anything
-- else is a `TypeError`. `a` false is an absent value: 0.
local function add(a, b)
  local ta, ha, la = 'i', 0, 0
  if a then
    ta, ha, la = number(a)
  end
  local tb, hb, lb = number(b)
  if not ta or not tb then
    fail('TypeError', 'cannot add: both sides must be numbers')
  end
  if ta == 'i' and tb == 'i' then
    local lo, hi = la + lb, ha + hb
    if lo >= TWO32 then
      lo, hi = lo - TWO32, hi + 1
    end
    if hi < -2147483648 or hi > 4294967295 then
      fail('Overflow', 'the sum is beyond 64 bits (i64::MIN to u64::MAX)')
    end
    return integer(hi, lo)
  end
  local x = ta == 'i' and ha * TWO32 + la or ha
  local y = tb == 'i' and hb * TWO32 + lb or hb
  return '\203' .. struct.pack('>d', x + y)
end

-- Objects ---------------------------------------------------------------------------------------

-- Makes the object of `kind` from the arguments (a list's or an array's items, a value).
local function make(kind, first)
  redis.call('HSET', M, 'kind', kind, 'ver', 0, 'seq', 0)
  if kind == 'list' or kind == 'array' then
    local n = #ARGV - first + 1
    for i = first, #ARGV, 1000 do
      redis.call('RPUSH', L, unpack(ARGV, i, math.min(i + 999, #ARGV)))
    end
    if kind == 'array' then
      redis.call('HSET', M, 'len', n)
    end
  elseif kind == 'value' then
    redis.call('SET', V, ARGV[first])
  elseif kind == 'queue' and ARGV[first] then
    redis.call('HSET', M, 'max', ARGV[first])
  elseif kind == 'semaphore' or kind == 'bounded_semaphore' then
    redis.call('SET', P .. 'sem', ARGV[first])
    if kind == 'bounded_semaphore' then
      redis.call('HSET', M, 'bound', ARGV[first])
    end
  elseif kind == 'barrier' then
    redis.call('HSET', M, 'parties', ARGV[first])
  elseif kind == 'object' then
    redis.call('HSET', M, 'type', ARGV[first])
    redis.call('SET', V, ARGV[first + 1])
  end
end

local ops = {}

-- create <kind> <args...>: 1, or 0 if the id is taken (the client draws another).
ops['create'] = function()
  local kind = arg(1)
  if redis.call('EXISTS', M) == 1 then
    return 0
  end
  make(kind, 4)
  return 1
end

-- named <kind> <name> <args...>: 1 if made, 0 if it was there (of the same kind).
ops['named'] = function()
  local kind, name = arg(1), arg(2)
  local there = redis.call('HMGET', M, 'kind', 'name')
  if there[1] then
    if there[2] ~= name then
      fail('WrongKind', 'the name ' .. name .. ' collides with another object (' .. P .. ')')
    end
    if there[1] ~= kind then
      fail('WrongKind', 'the name ' .. name .. ' is a ' .. there[1] .. ', not a ' .. kind)
    end
    return 0
  end
  make(kind, 5)
  redis.call('HSET', M, 'name', name)
  return 1
end

-- remove <name>: removes the object if it is the one of that name; 1 if it was.
ops['remove'] = function()
  if redis.call('HGET', M, 'name') ~= arg(1) then
    return 0
  end
  for _, v in ipairs(redis.call('HVALS', H)) do
    drop(v)
  end
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'consumers')) do
    redis.call('UNLINK', P .. 'pend:' .. c, P .. 'lease:' .. c, P .. 'held:' .. c)
  end
  redis.call('UNLINK', M, H, O, L, V, P .. 'own', P .. 'state', P .. 'depth', P .. 'fence', P .. 'w',
    P .. 'q', P .. 'unfinished', P .. 'consumers', P .. 'wput', P .. 'wjoin', P .. 'qlost',
    P .. 'qreported', P .. 'sem',
    P .. 'wsem', P .. 'flag', P .. 'waiting', P .. 'wev', P .. 'bgen', P .. 'bcount',
    P .. 'barrived', P .. 'bbroken', P .. 'wb', P .. 'cticket', P .. 'cwaiting', P .. 'cnotified',
    P .. 'log')
  return 1
end

ops['kind'] = function()
  return kind_of()
end

-- watch.read <since or 'start'>: { version, changes or false (none yet), missed }. The first
-- watch makes the object watched: its changes are logged from then on.
ops['watch.read'] = function()
  kind_of()
  redis.call('HSET', M, 'watched', '1')
  local version = tonumber(redis.call('HGET', M, 'lver') or 0)
  local since = arg(1)
  if since == 'start' or version <= tonumber(since) then
    return { version, false, 0 }
  end
  local entries = redis.call('XRANGE', P .. 'log', '(' .. since .. '-0', '+')
  local changes, first = {}, nil
  for i, entry in ipairs(entries) do
    changes[i] = entry[2][2]
    first = first or tonumber(string.match(entry[1], '^(%d+)'))
  end
  local missed = 0
  if first == nil or first > tonumber(since) + 1 then
    missed = 1
  end
  return { version, changes, missed }
end

-- Dicts -----------------------------------------------------------------------------------------

local function is_string(encoded)
  local b = string.byte(encoded, 1)
  return b and ((b >= 0xa0 and b <= 0xbf) or (b >= 0xd9 and b <= 0xdb))
end

-- The dict's key argument `i`; a namespace's attribute names are strings.
local function key(kind, i)
  local k = arg(i)
  if kind == 'namespace' and not is_string(k) then
    fail('BadArguments', "a namespace's attribute names are strings")
  end
  return k
end

-- Nesting ---------------------------------------------------------------------------------------
--
-- A dict's slot may hold a nested dict or list: an object of its own, under its own prefix, its
-- slot a marker (MessagePack extension 1, the manager's own: `fixext8`, the child's id in 8
-- bytes). Reading the slot gives a copy of the child (its map or array, built from the stored
-- encodings without decoding them); replacing or removing it removes the child and what it nests.

local function is_marker(v)
  return v and #v == 10 and string.byte(v, 1) == 0xd7 and string.byte(v, 2) == 1
end

-- (The child's id keeps its parent's 15 slot bits, below the top one: its keys' hash tag is its
-- parent's, so that a Redis Cluster keeps both on one node.)
local function child_prefix(marker)
  local hex = string.gsub(string.sub(marker, 3), '.', function(c)
    return string.format('%02x', string.byte(c))
  end)
  local slot = string.format('%02x', string.byte(marker, 3) % 128) .. string.sub(hex, 3, 4)
  return string.match(P, '^(mp:{.*:)%x%x%x%x}:%x+:$') .. slot .. '}:' .. hex .. ':'
end

local function header(n, small, base)
  if n < 16 then return string.char(small + n) end
  if n < 65536 then return string.char(base) .. struct.pack('>H', n) end
  return string.char(base + 1) .. struct.pack('>I4', n)
end

-- `v`, or for a marker a copy of its container.
local function expand(v, depth)
  if not nests or not is_marker(v) then
    return v
  end
  depth = depth or 0
  if depth > 40 then
    fail('NestingTooDeep', 'containers nested beyond the limit')
  end
  local c = child_prefix(v)
  local kind = redis.call('HGET', c .. 'm', 'kind')
  if kind == 'dict' then
    local keys = redis.call('ZRANGE', c .. 'o', 0, -1)
    local parts = {}
    for _, k in ipairs(keys) do
      parts[#parts + 1] = k
      parts[#parts + 1] = expand(redis.call('HGET', c .. 'h', k), depth + 1)
    end
    return header(#keys, 0x80, 0xde) .. table.concat(parts)
  elseif kind == 'list' then
    local items = redis.call('LRANGE', c .. 'l', 0, -1)
    return header(#items, 0x90, 0xdc) .. table.concat(items)
  end
  return NIL
end

-- Removes the container a marker `v` names, with what it nests.
drop = function(v)
  if not is_marker(v) then
    return
  end
  local c = child_prefix(v)
  for _, inner in ipairs(redis.call('HVALS', c .. 'h')) do
    drop(inner)
  end
  redis.call('UNLINK', c .. 'm', c .. 'h', c .. 'o', c .. 'l', c .. 'log')
end

local function put(k, v)
  if nests then
    drop(redis.call('HGET', H, k))
  end
  if redis.call('HSET', H, k, v) == 1 then
    redis.call('ZADD', O, redis.call('HINCRBY', M, 'seq', 1), k)
  end
  changed()
  log('set', k, v)
end

local function take(k)
  if nests then
    drop(redis.call('HGET', H, k))
  end
  redis.call('HDEL', H, k)
  redis.call('ZREM', O, k)
  changed()
  log('del', k)
end

local function missing(k)
  fail('KeyMissing', 'no such key')
end

-- The values under `keys`, false where absent.
local function values_of(keys)
  local out = {}
  for i = 1, #keys, 1000 do
    local part = redis.call('HMGET', H, unpack(keys, i, math.min(i + 999, #keys)))
    for j = 1, math.min(999, #keys - i) + 1 do
      out[#out + 1] = expand(part[j])
    end
  end
  return out
end

ops['dict.len'] = function() kind_of() return redis.call('HLEN', H) end
ops['dict.version'] = function()
  kind_of()
  return tonumber(redis.call('HGET', M, 'ver') or 0)
end
ops['dict.get'] = function() kind_of() return expand(redis.call('HGET', H, arg(1))) end
ops['dict.getitem'] = function()
  local k = key(kind_of(), 1)
  return expand(redis.call('HGET', H, k) or missing(k))
end
ops['dict.contains'] = function()
  local k = key(kind_of(), 1)
  return redis.call('HEXISTS', H, k)
end
ops['dict.set'] = function()
  local k = key(kind_of(), 1)
  put(k, arg(2))
  return NIL
end
-- pop and del: the value removed; pop of an absent key is nil, del's is `KeyMissing`.
ops['dict.pop'] = function()
  kind_of()
  local k = arg(1)
  local v = expand(redis.call('HGET', H, k))
  if v then take(k) end
  return v
end
ops['dict.del'] = function()
  local k = key(kind_of(), 1)
  local v = expand(redis.call('HGET', H, k) or missing(k))
  take(k)
  return v
end
ops['dict.popitem'] = function()
  kind_of()
  local last = redis.call('ZRANGE', O, -1, -1)[1]
  if not last then
    fail('KeyMissing', 'popitem: the dict is empty')
  end
  local v = expand(redis.call('HGET', H, last))
  take(last)
  return { last, v }
end
ops['dict.keys'] = function() kind_of() return redis.call('ZRANGE', O, 0, -1) end
ops['dict.values'] = function()
  kind_of()
  return values_of(redis.call('ZRANGE', O, 0, -1))
end
-- items: key, value, key, value, ...
ops['dict.items'] = function()
  kind_of()
  local keys = redis.call('ZRANGE', O, 0, -1)
  local values = values_of(keys)
  local out = {}
  for i, k in ipairs(keys) do
    out[2 * i - 1], out[2 * i] = k, values[i]
  end
  return out
end
ops['dict.clear'] = function()
  kind_of()
  if nests then
    for _, v in ipairs(redis.call('HVALS', H)) do
      drop(v)
    end
  end
  redis.call('DEL', H, O)
  changed()
  log('clear')
  return NIL
end
ops['dict.setdefault'] = function()
  kind_of()
  local k, default = arg(1), arg(2)
  local v = redis.call('HGET', H, k)
  if v then return expand(v) end
  put(k, default)
  return default
end
ops['dict.incr'] = function()
  kind_of()
  local k = arg(1)
  local sum = add(redis.call('HGET', H, k), arg(2))
  put(k, sum)
  return sum
end
-- compare_and_swap <key> <expected> <new>: nil expected means absent; 1 if swapped.
ops['dict.compare_and_swap'] = function()
  kind_of()
  local k, expected, new = arg(1), arg(2), arg(3)
  local current = redis.call('HGET', H, k)
  local matches
  if current then matches = current == expected else matches = expected == NIL end
  if not matches then return 0 end
  put(k, new)
  return 1
end
-- update <key> <value> <key> <value> ...
ops['dict.update'] = function()
  kind_of()
  if (#ARGV - 2) % 2 ~= 0 then
    fail('BadArguments', 'a pair is [key, value]')
  end
  for i = 3, #ARGV, 2 do
    put(ARGV[i], ARGV[i + 1])
  end
  return NIL
end
-- nested <key> <kind> <id>: the id (8 bytes) of the container nested at key, made (with `id`, a
-- new one the client drew) if the key is absent.
ops['dict.nested'] = function()
  kind_of()
  local k, kind, id = arg(1), arg(2), arg(3)
  local there = redis.call('HGET', H, k)
  if there then
    if is_marker(there) and redis.call('HGET', child_prefix(there) .. 'm', 'kind') == kind then
      return string.sub(there, 3)
    end
    fail('TypeError', 'the value at this key is not a ' .. kind)
  end
  if kind ~= 'dict' and kind ~= 'list' then
    fail('BadArguments', 'a nested container is a dict or a list')
  end
  local depth = tonumber(redis.call('HGET', M, 'depth') or 0) + 1
  if depth > 32 then
    fail('NestingTooDeep', 'containers nest 32 levels at most')
  end
  local marker = '\215\001' .. id
  local c = child_prefix(marker)
  if redis.call('EXISTS', c .. 'm') == 1 then
    return false -- the id is taken: the client draws another
  end
  redis.call('HSET', c .. 'm', 'kind', kind, 'ver', 0, 'seq', 0, 'depth', depth)
  redis.call('HSET', M, 'nests', '1')
  if redis.call('HSET', H, k, marker) == 1 then
    redis.call('ZADD', O, redis.call('HINCRBY', M, 'seq', 1), k)
  end
  changed()
  log('nested', k, string.char(0xa0 + #kind) .. kind)
  return id
end
ops['dict.get_many'] = function()
  kind_of()
  local keys = {}
  for i = 3, #ARGV do keys[#keys + 1] = ARGV[i] end
  return values_of(keys)
end

-- Values ----------------------------------------------------------------------------------------

ops['value.get'] = function() kind_of() return redis.call('GET', V) end
ops['value.set'] = function()
  kind_of()
  redis.call('SET', V, arg(1))
  return NIL
end
ops['value.fetch_add'] = function()
  kind_of()
  local old = redis.call('GET', V)
  redis.call('SET', V, add(old, arg(1)))
  return old
end
-- compare_exchange <expected> <new>: { 1 if stored, the value before }
ops['value.compare_exchange'] = function()
  kind_of()
  local current = redis.call('GET', V)
  if current == arg(1) then
    redis.call('SET', V, arg(2))
    return { 1, current }
  end
  return { 0, current }
end

-- Lists -----------------------------------------------------------------------------------------

ops['list.len'] = function() kind_of() return redis.call('LLEN', L) end
ops['list.all'] = function() kind_of() return redis.call('LRANGE', L, 0, -1) end
-- Index arguments are integers in decimal (the client decodes them): negative counts from the end.

-- range <start> <end>: clamped to the list as Python's slices are.
ops['list.range'] = function()
  kind_of()
  local len = redis.call('LLEN', L)
  local a, b = tonumber(arg(1)), tonumber(arg(2))
  if a < 0 then a = math.max(a + len, 0) end
  if b < 0 then b = math.max(b + len, 0) end
  a, b = math.min(a, len), math.min(b, len)
  if b <= a then return {} end
  return redis.call('LRANGE', L, a, b - 1)
end
-- Index argument `i` as a position in the list, and the list's length.
local function position(i)
  local len = redis.call('LLEN', L)
  local n = tonumber(arg(i))
  local at = n
  if at < 0 then at = at + len end
  if at < 0 or at >= len then
    fail('IndexOutOfRange', 'index ' .. n .. ' out of range for length ' .. len)
  end
  return at, len
end
ops['list.get'] = function()
  kind_of()
  return redis.call('LINDEX', L, (position(1)))
end
ops['list.set'] = function()
  kind_of()
  local at = position(1)
  redis.call('LSET', L, at, arg(2))
  changed()
  log('set', integer(0, at), arg(2))
  return NIL
end
ops['list.incr'] = function()
  kind_of()
  local at = position(1)
  local sum = add(redis.call('LINDEX', L, at), arg(2))
  redis.call('LSET', L, at, sum)
  changed()
  log('set', integer(0, at), sum)
  return sum
end
ops['list.append'] = function()
  kind_of()
  redis.call('RPUSH', L, arg(1))
  changed()
  log('append', arg(1))
  return NIL
end
ops['list.extend'] = function()
  kind_of()
  for i = 3, #ARGV, 1000 do
    redis.call('RPUSH', L, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  changed()
  for i = 3, #ARGV do
    log('append', ARGV[i])
  end
  return NIL
end
-- Removes the item at `at` (an index in the list): O(n) in Redis, one script.
local function remove_at(at)
  local item = redis.call('LINDEX', L, at)
  redis.call('LSET', L, at, MARK)
  redis.call('LREM', L, 1, MARK)
  changed()
  log('remove', integer(0, at))
  return item
end
-- pop [i]: the last item (nil if empty), or the one at i (`IndexOutOfRange` outside the list).
ops['list.pop'] = function()
  kind_of()
  if #ARGV < 3 then
    local len = redis.call('LLEN', L)
    local item = redis.call('RPOP', L)
    if item then
      changed()
      log('remove', integer(0, len - 1))
    end
    return item
  end
  return remove_at((position(1)))
end
ops['list.remove'] = function()
  kind_of()
  return remove_at((position(1)))
end
-- insert <i>: before the item at i, clamped to the list as Python's `insert` does.
ops['list.insert'] = function()
  kind_of()
  local len = redis.call('LLEN', L)
  local at = tonumber(arg(1))
  if at < 0 then at = math.max(at + len, 0) end
  local item = arg(2)
  at = math.min(at, len)
  if at >= len then
    redis.call('RPUSH', L, item)
  elseif at == 0 then
    redis.call('LPUSH', L, item)
  else
    local there = redis.call('LINDEX', L, at)
    redis.call('LSET', L, at, MARK)
    redis.call('LINSERT', L, 'BEFORE', MARK, item)
    redis.call('LSET', L, at + 1, there)
  end
  changed()
  log('insert', integer(0, at), item)
  return NIL
end
ops['list.remove_item'] = function()
  kind_of()
  local at = redis.call('LPOS', L, arg(1))
  if not at then
    fail('ItemMissing', 'remove_item: the item is not in the list')
  end
  remove_at(at)
  return NIL
end
ops['list.clear'] = function()
  kind_of()
  redis.call('DEL', L)
  changed()
  log('clear')
  return NIL
end
ops['list.contains'] = function()
  kind_of()
  return redis.call('LPOS', L, arg(1)) and 1 or 0
end
ops['list.count'] = function()
  kind_of()
  return #redis.call('LPOS', L, arg(1), 'COUNT', 0)
end
ops['list.index'] = function()
  kind_of()
  return redis.call('LPOS', L, arg(1))
end
-- Locks -----------------------------------------------------------------------------------------
--
-- A lock is a lease: `own` holds the holder's token and expires unless the holder's process renews
-- it; `state` says 'held' from an acquisition to its release, so that a lease that lapsed without
-- a release tells the next taker its holder died; `fence` counts acquisitions (a token that only
-- grows); `depth` a recursive lock's acquisitions; `w` a wake list that a release pushes to, where
-- a waiter blocks (BLPOP) between its attempts.

-- acquire <token> <lease ms>: { 'acquired' | 'owner_died' | 'busy', fence }
ops['lock.acquire'] = function()
  local kind = kind_of()
  local token, lease = arg(1), arg(2)
  local own, state, depth = P .. 'own', P .. 'state', P .. 'depth'
  local holder = redis.call('GET', own)
  if holder == token then
    if kind == 'lock' then
      fail('WouldDeadlock', 'this handle already holds the lock')
    end
    redis.call('INCR', depth)
    redis.call('PEXPIRE', own, lease)
    return { 'acquired', tonumber(redis.call('GET', P .. 'fence') or 0) }
  end
  if holder then
    return { 'busy', 0 }
  end
  local died = redis.call('GET', state) == 'held'
  redis.call('SET', own, token, 'PX', lease)
  redis.call('SET', state, 'held')
  redis.call('SET', depth, 1)
  local fence = redis.call('INCR', P .. 'fence')
  if died then
    return { 'owner_died', fence }
  end
  return { 'acquired', fence }
end
-- release <token> <lease ms>: one acquisition; the last wakes a waiter.
ops['lock.release'] = function()
  kind_of()
  local token, lease = arg(1), arg(2)
  local own, depth = P .. 'own', P .. 'depth'
  if redis.call('GET', own) ~= token then
    fail('NotOwner', 'the lock is not held by this handle')
  end
  if redis.call('DECR', depth) > 0 then
    return NIL
  end
  redis.call('DEL', own, P .. 'state', depth, P .. 'w')
  redis.call('RPUSH', P .. 'w', '1')
  redis.call('PEXPIRE', P .. 'w', lease)
  return NIL
end
-- renew <token> <lease ms>: 1 if the lease is still this token's (and now longer).
ops['lock.renew'] = function()
  if redis.call('GET', P .. 'own') ~= arg(1) then
    return 0
  end
  redis.call('PEXPIRE', P .. 'own', arg(2))
  return 1
end
-- state <token>: { held by anyone, this token's depth }
ops['lock.state'] = function()
  kind_of()
  local holder = redis.call('GET', P .. 'own')
  local mine = 0
  if holder and holder == arg(1) then
    mine = tonumber(redis.call('GET', P .. 'depth') or 0)
  end
  return { holder and 1 or 0, mine }
end

-- Queues ----------------------------------------------------------------------------------------
--
-- At least once: `q` holds the items; a get moves one into its consumer's pending list
-- `pend:<consumer>` (never outside a list, even while it travels), where it stays until that
-- consumer's next get or `task_done`. A consumer is a handle with a lease `lease:<consumer>`,
-- renewed by its process; a get first gives back, to the head of the queue, what consumers whose
-- lease lapsed (dead, stopped) had pending. `unfinished` counts items put and not yet done;
-- `consumers` names the consumers; `wput` and `wjoin` are wake lists for a bounded queue's putters
-- and for `join`.

local function wake(list, lease)
  redis.call('DEL', list)
  redis.call('RPUSH', list, '1')
  redis.call('PEXPIRE', list, lease)
end

-- Consumer `c` is gone: what it had pending goes back to the head of the queue (`requeue`) or
-- counts as delivered; what was delivered and not done (`held:<c>`: the items its later gets
-- acknowledged, and with `requeue` false its pending ones) is lost: no longer unfinished, and
-- counted in `qlost` for `join` to report, as the in-memory manager reports a dead consumer's.
local function forget(c, requeue, lease)
  local pending = P .. 'pend:' .. c
  local lost = tonumber(redis.call('GET', P .. 'held:' .. c) or 0)
  if requeue then
    while redis.call('LMOVE', pending, P .. 'q', 'RIGHT', 'LEFT') do end
  else
    lost = lost + redis.call('LLEN', pending)
  end
  redis.call('DEL', pending, P .. 'held:' .. c, P .. 'lease:' .. c)
  redis.call('SREM', P .. 'consumers', c)
  if lost > 0 then
    local unfinished = tonumber(redis.call('GET', P .. 'unfinished') or 0)
    lost = math.min(lost, unfinished)
    redis.call('DECRBY', P .. 'unfinished', lost)
    redis.call('INCRBY', P .. 'qlost', lost)
    if unfinished == lost then wake(P .. 'wjoin', lease) end
  end
end

-- Forgets the consumers whose lease lapsed (dead, stopped), their pending items requeued.
local function reap(lease)
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'consumers')) do
    if redis.call('EXISTS', P .. 'lease:' .. c) == 0 then
      forget(c, true, lease)
    end
  end
end

-- put <item> <lease ms>: 'ok', or 'full' (a bounded queue: the caller waits and tries again).
ops['queue.put'] = function()
  kind_of()
  local item = arg(1)
  local meta = redis.call('HMGET', M, 'closed', 'max')
  if meta[1] then
    fail('Closed', 'the queue is closed')
  end
  if meta[2] and redis.call('LLEN', P .. 'q') >= tonumber(meta[2]) then
    return 'full'
  end
  redis.call('RPUSH', P .. 'q', item)
  redis.call('INCR', P .. 'unfinished')
  return 'ok'
end
-- get <consumer> <lease ms>: { item }, or 'empty' (the caller then blocks in BLMOVE into its
-- pending list, its lease taken here); `Closed` once closed and empty.
ops['queue.get'] = function()
  kind_of()
  local consumer, lease = arg(1), arg(2)
  local pending = P .. 'pend:' .. consumer
  reap(lease)
  -- What it got before was delivered: held until done.
  local delivered = redis.call('LLEN', pending)
  if delivered > 0 then
    redis.call('INCRBY', P .. 'held:' .. consumer, delivered)
    redis.call('DEL', pending)
  end
  redis.call('SET', P .. 'lease:' .. consumer, '1', 'PX', lease)
  redis.call('SADD', P .. 'consumers', consumer)
  local item = redis.call('LMOVE', P .. 'q', pending, 'LEFT', 'RIGHT')
  local meta = redis.call('HMGET', M, 'closed', 'max')
  if item then
    if meta[2] then wake(P .. 'wput', lease) end
    return { item }
  end
  if meta[1] then
    fail('Closed', 'the queue is closed and empty')
  end
  return 'empty'
end
-- ack <consumer>: what the consumer has pending was delivered (its process let go of the
-- queue): it is no longer a consumer.
ops['queue.ack'] = function()
  forget(arg(1), false, 1000)
  return 1
end
-- joined <lease ms>: -1 while items are unfinished; then how many were lost since the last
-- report (their consumers died before declaring them done).
ops['queue.joined'] = function()
  kind_of()
  reap(arg(2))
  if tonumber(redis.call('GET', P .. 'unfinished') or 0) > 0 then
    return -1
  end
  local lost = tonumber(redis.call('GET', P .. 'qlost') or 0)
  local reported = tonumber(redis.call('GET', P .. 'qreported') or 0)
  redis.call('SET', P .. 'qreported', lost)
  return lost - reported
end
-- renew <consumer> <lease ms>: the consumer's lease, longer.
ops['queue.renew'] = function()
  redis.call('SET', P .. 'lease:' .. arg(1), '1', 'PX', arg(2))
  return 1
end
-- task_done <consumer> <lease ms>
ops['queue.task_done'] = function()
  kind_of()
  local consumer, lease = arg(1), arg(2)
  local unfinished = tonumber(redis.call('GET', P .. 'unfinished') or 0)
  if unfinished <= 0 then
    fail('TooManyTaskDone', 'task_done called more times than items were put')
  end
  redis.call('DECR', P .. 'unfinished')
  if not redis.call('LPOP', P .. 'pend:' .. consumer) then
    local held = P .. 'held:' .. consumer
    if tonumber(redis.call('GET', held) or 0) > 0 then redis.call('DECR', held) end
  end
  if unfinished == 1 then wake(P .. 'wjoin', lease) end
  return NIL
end
ops['queue.close'] = function()
  kind_of()
  redis.call('HSET', M, 'closed', '1')
  return NIL
end
-- state: { items, the bound or -1, closed, unfinished }
ops['queue.state'] = function()
  kind_of()
  local meta = redis.call('HMGET', M, 'closed', 'max')
  return {
    redis.call('LLEN', P .. 'q'),
    tonumber(meta[2] or -1),
    meta[1] and 1 or 0,
    tonumber(redis.call('GET', P .. 'unfinished') or 0),
  }
end

-- Semaphores and events -------------------------------------------------------------------------
--
-- A semaphore's permits are `sem` (belonging to nobody, as on the manager; a bounded one's bound
-- is the meta's `bound`); an event's flag is `flag`. Waiters block on the wake lists `wsem` and
-- `wev` between their looks; an event's waiters count themselves in `waiting`, so that a set
-- wakes them all.

-- acquire: 'acquired', or 'busy' (the caller waits and looks again)
ops['semaphore.acquire'] = function()
  kind_of()
  if tonumber(redis.call('GET', P .. 'sem') or 0) > 0 then
    redis.call('DECR', P .. 'sem')
    return 'acquired'
  end
  return 'busy'
end
-- release <lease ms>
ops['semaphore.release'] = function()
  kind_of()
  local bound = redis.call('HGET', M, 'bound')
  if bound and tonumber(redis.call('GET', P .. 'sem') or 0) >= tonumber(bound) then
    fail('TooManyReleases', 'the bounded semaphore is released more times than acquired')
  end
  redis.call('INCR', P .. 'sem')
  wake(P .. 'wsem', arg(1))
  return NIL
end
ops['semaphore.value'] = function()
  kind_of()
  return tonumber(redis.call('GET', P .. 'sem') or 0)
end
-- set <lease ms>: the flag, and a wake for every waiter
ops['event.set'] = function()
  kind_of()
  redis.call('SET', P .. 'flag', '1')
  local waiting = tonumber(redis.call('GET', P .. 'waiting') or 0)
  redis.call('DEL', P .. 'wev')
  for _ = 1, math.max(waiting, 1) do
    redis.call('RPUSH', P .. 'wev', '1')
  end
  redis.call('PEXPIRE', P .. 'wev', arg(1))
  return NIL
end
ops['event.clear'] = function()
  kind_of()
  redis.call('DEL', P .. 'flag')
  return NIL
end
ops['event.is_set'] = function()
  kind_of()
  return redis.call('EXISTS', P .. 'flag')
end
-- wait <'enter' | 'again' | 'leave'>: 1 if set (the waiter is done), else 0. A waiter enters
-- (counted), looks again after each wake or slice, and leaves at its deadline.
ops['event.wait'] = function()
  kind_of()
  local step = arg(1)
  local set = redis.call('EXISTS', P .. 'flag') == 1
  if step == 'leave' or (set and step == 'again') then
    if tonumber(redis.call('GET', P .. 'waiting') or 0) > 0 then
      redis.call('DECR', P .. 'waiting')
    end
  elseif step == 'enter' and not set then
    redis.call('INCR', P .. 'waiting')
  end
  return set and 1 or 0
end

-- Barriers --------------------------------------------------------------------------------------
--
-- `bgen` counts the rounds, `bcount` the parties arrived in this one, `barrived` their tokens,
-- each with a lease `blease:<token>` that its waiter renews at every look (a waiter that dies or
-- stops renews nothing: once its lease lapses, the others' next look breaks the barrier);
-- `bbroken` says broken; `breset:<round>` that a reset ended that round; `wb` wakes the waiters.

local function barrier_wake(lease)
  local parties = tonumber(redis.call('HGET', M, 'parties'))
  redis.call('DEL', P .. 'wb')
  for _ = 1, parties do
    redis.call('RPUSH', P .. 'wb', '1')
  end
  redis.call('PEXPIRE', P .. 'wb', lease)
end

local function barrier_break(lease)
  redis.call('SET', P .. 'bbroken', '1')
  barrier_wake(lease)
end

local function broken_barrier()
  fail('BrokenBarrier', 'the barrier is broken')
end

-- arrive <token> <lease ms>: { index, round, 1 if this arrival released the round }
ops['barrier.arrive'] = function()
  kind_of()
  local token, lease = arg(1), arg(2)
  if redis.call('EXISTS', P .. 'bbroken') == 1 then broken_barrier() end
  local parties = tonumber(redis.call('HGET', M, 'parties'))
  local round = tonumber(redis.call('GET', P .. 'bgen') or 0)
  local index = tonumber(redis.call('GET', P .. 'bcount') or 0)
  if index + 1 == parties then
    for _, t in ipairs(redis.call('SMEMBERS', P .. 'barrived')) do
      redis.call('DEL', P .. 'blease:' .. t)
    end
    redis.call('DEL', P .. 'barrived', P .. 'bcount')
    redis.call('INCR', P .. 'bgen')
    barrier_wake(lease)
    return { index, round, 1 }
  end
  redis.call('INCR', P .. 'bcount')
  redis.call('SADD', P .. 'barrived', token)
  redis.call('SET', P .. 'blease:' .. token, '1', 'PX', lease)
  return { index, round, 0 }
end
-- look <token> <lease ms> <round>: 1 once the round passed; `BrokenBarrier` if it broke, was
-- reset, or a party's lease lapsed (which breaks it). Renews this waiter's lease.
ops['barrier.look'] = function()
  kind_of()
  local token, lease, round = arg(1), arg(2), tonumber(arg(3))
  if tonumber(redis.call('GET', P .. 'bgen') or 0) ~= round then
    if redis.call('EXISTS', P .. 'breset:' .. round) == 1 then broken_barrier() end
    return 1
  end
  if redis.call('EXISTS', P .. 'bbroken') == 1 then broken_barrier() end
  redis.call('SET', P .. 'blease:' .. token, '1', 'PX', lease)
  for _, t in ipairs(redis.call('SMEMBERS', P .. 'barrived')) do
    if redis.call('EXISTS', P .. 'blease:' .. t) == 0 then
      barrier_break(lease)
      broken_barrier()
    end
  end
  return 0
end
-- leave <token> <lease ms> <round>: this waiter's deadline came; it breaks the round (if it had
-- not passed). 1 if it had passed meanwhile.
ops['barrier.leave'] = function()
  kind_of()
  local token, lease, round = arg(1), arg(2), tonumber(arg(3))
  if tonumber(redis.call('GET', P .. 'bgen') or 0) ~= round then
    return 1
  end
  redis.call('SREM', P .. 'barrived', token)
  redis.call('DEL', P .. 'blease:' .. token)
  if tonumber(redis.call('GET', P .. 'bcount') or 0) > 0 then
    redis.call('DECR', P .. 'bcount')
  end
  barrier_break(lease)
  return 0
end
ops['barrier.abort'] = function()
  kind_of()
  barrier_break(arg(2))
  return NIL
end
ops['barrier.reset'] = function()
  kind_of()
  local round = tonumber(redis.call('GET', P .. 'bgen') or 0)
  if tonumber(redis.call('GET', P .. 'bcount') or 0) > 0 then
    redis.call('SET', P .. 'breset:' .. round, '1', 'PX', 3600000)
  end
  for _, t in ipairs(redis.call('SMEMBERS', P .. 'barrived')) do
    redis.call('DEL', P .. 'blease:' .. t)
  end
  redis.call('DEL', P .. 'barrived', P .. 'bcount', P .. 'bbroken')
  redis.call('INCR', P .. 'bgen')
  barrier_wake(arg(2))
  return NIL
end
-- state: { parties, waiting (0 if broken), broken }
ops['barrier.state'] = function()
  kind_of()
  local broken = redis.call('EXISTS', P .. 'bbroken') == 1
  local count = tonumber(redis.call('GET', P .. 'bcount') or 0)
  if broken then count = 0 end
  return { tonumber(redis.call('HGET', M, 'parties')), count, broken and 1 or 0 }
end

-- Conditions ------------------------------------------------------------------------------------
--
-- A condition's lock is a recursive lease lock (the lock operations above). A waiter releases it,
-- takes a ticket (`cticket`), queues it in `cwaiting` with a lease `clease:<ticket>` that it
-- renews at every look, and waits on its own wake list `cw:<ticket>`; a notify moves the first
-- live tickets (a lapsed lease is a dead waiter: skipped) to `cnotified` and wakes them.

-- wait <token> <lease ms>: { ticket, depth }: the lock released (every acquisition of this
-- token), the ticket queued.
ops['condition.wait'] = function()
  kind_of()
  local token, lease = arg(1), arg(2)
  if redis.call('GET', P .. 'own') ~= token then
    fail('NotOwner', 'cannot wait on a condition whose lock this handle does not hold')
  end
  local depth = tonumber(redis.call('GET', P .. 'depth') or 1)
  redis.call('DEL', P .. 'own', P .. 'state', P .. 'depth')
  wake(P .. 'w', lease)
  local ticket = redis.call('INCR', P .. 'cticket')
  redis.call('RPUSH', P .. 'cwaiting', ticket)
  redis.call('SET', P .. 'clease:' .. ticket, '1', 'PX', lease)
  return { ticket, depth }
end
-- look <ticket> <lease ms> <leaving>: 1 if notified (the ticket is done); else 0, the lease
-- renewed, or with `leaving` 1 the ticket withdrawn.
ops['condition.look'] = function()
  kind_of()
  local ticket, lease, leaving = arg(1), arg(2), arg(3) == '1'
  if redis.call('SREM', P .. 'cnotified', ticket) == 1 then
    redis.call('DEL', P .. 'clease:' .. ticket, P .. 'cw:' .. ticket)
    return 1
  end
  if leaving then
    redis.call('LREM', P .. 'cwaiting', 1, ticket)
    redis.call('DEL', P .. 'clease:' .. ticket, P .. 'cw:' .. ticket)
  else
    redis.call('SET', P .. 'clease:' .. ticket, '1', 'PX', lease)
  end
  return 0
end
-- retake <token> <lease ms> <depth>: the lock back at `depth`: { 'acquired' | 'owner_died' |
-- 'busy', fence }
ops['condition.retake'] = function()
  kind_of()
  local token, lease, depth = arg(1), arg(2), arg(3)
  if redis.call('EXISTS', P .. 'own') == 1 then
    return { 'busy', 0 }
  end
  local died = redis.call('GET', P .. 'state') == 'held'
  redis.call('SET', P .. 'own', token, 'PX', lease)
  redis.call('SET', P .. 'state', 'held')
  redis.call('SET', P .. 'depth', depth)
  local fence = redis.call('INCR', P .. 'fence')
  if died then
    return { 'owner_died', fence }
  end
  return { 'acquired', fence }
end
-- notify <count or ''> <lease ms>: how many live waiters it woke (all if no count).
ops['condition.notify'] = function()
  kind_of()
  local n = tonumber(arg(1))
  local lease = arg(2)
  local woken = 0
  while n == nil or woken < n do
    local ticket = redis.call('LPOP', P .. 'cwaiting')
    if not ticket then break end
    if redis.call('EXISTS', P .. 'clease:' .. ticket) == 1 then
      redis.call('SADD', P .. 'cnotified', ticket)
      wake(P .. 'cw:' .. ticket, lease)
      woken = woken + 1
    end
  end
  return woken
end

-- User types ------------------------------------------------------------------------------------
--
-- The object's state is `v` (its encoding), its type's name the meta's `type`. A method runs in
-- the caller's process, on a snapshot; its new state is written only if nothing was written since.

-- object.snapshot: { version, type, state }
ops['object.snapshot'] = function()
  kind_of()
  local meta = redis.call('HMGET', M, 'ver', 'type')
  return { tonumber(meta[1] or 0), meta[2], redis.call('GET', V) }
end
-- object.replace <version> <state>: 1 if written (nothing was written since the snapshot), else 0
ops['object.replace'] = function()
  kind_of()
  if tonumber(redis.call('HGET', M, 'ver') or 0) ~= tonumber(arg(1)) then
    return 0
  end
  redis.call('SET', V, arg(2))
  changed()
  return 1
end

-- snapshot: { version, items } for an operation the client runs itself (a sort, a slice).
ops['list.snapshot'] = function()
  local kind = kind_of()
  return { tonumber(redis.call('HGET', M, 'ver') or 0), kind, redis.call('LRANGE', L, 0, -1) }
end
-- replace <version> <n> <items...> <changes...>: the list's n items, if it is still at `version`
-- (else 0); the changes (encoded, as the in-memory manager logs them) for its watchers.
ops['list.replace'] = function()
  kind_of()
  if tonumber(redis.call('HGET', M, 'ver') or 0) ~= tonumber(arg(1)) then
    return 0
  end
  local last = 4 + tonumber(arg(2))
  redis.call('DEL', L)
  for i = 5, last, 1000 do
    redis.call('RPUSH', L, unpack(ARGV, i, math.min(i + 999, last)))
  end
  changed()
  for i = last + 1, #ARGV do
    log_event(ARGV[i])
  end
  return 1
end

-- Refuses a call fenced with a token older than one the object saw (`StaleFence`); else the
-- object's largest token is this one.
local function fence_check(token)
  local seen = tonumber(redis.call('HGET', M, 'fence_seen') or 0)
  if token < seen then
    fail('StaleFence', 'fencing token ' .. token .. ' is older than ' .. seen
      .. ', which this object has seen: a later holder of the lock wrote since')
  end
  redis.call('HSET', M, 'fence_seen', token)
end

local function main(keys, args)
  KEYS, ARGV = keys, args
  P, op = KEYS[1], ARGV[1]
  local fence
  kinds, fence = string.match(ARGV[2], '^([^|]*)|?(%d*)$')
  M, H, O, L, V = P .. 'm', P .. 'h', P .. 'o', P .. 'l', P .. 'v'
  local run = ops[op]
  if not run then
    return redis.error_reply('NotExposed no operation ' .. tostring(op) .. ' on Redis')
  end
  local ok, result = pcall(function()
    if fence ~= '' then
      kind_of()
      fence_check(tonumber(fence))
    end
    return run()
  end)
  if ok then
    return result
  end
  -- An error of ours (`fail`) or of Redis's (WRONGTYPE, OOM) comes as its text or its table: its
  -- first word is its code. Anything else is a fault of the script's.
  if type(result) == 'table' and result.err then
    result = result.err
  end
  result = tostring(result)
  if string.find(result, '^%u%w* ') then
    return redis.error_reply(result)
  end
  return redis.error_reply('MethodFailed ' .. result)
end
