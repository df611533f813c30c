/* lctx_key.c — WithValue keys: a C descriptor with rawequal's meaning, so the
** core compares keys without the Lua state; and the "key, value" string form. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lctx.h"

/* Describes the key at idx (which the caller keeps referenced, so pointers
** stay valid and unique). Floats with an integer value become integers, as
** rawequal(1, 1.0) is true. nil and NaN are argument errors. */
void lctx_key_from(lua_State *L, int idx, const char *fname, int arg, lctx_key *k) {
  int t = lua_type(L, idx);
  k->type = t;
  k->len = 0;
  switch (t) {
    case LUA_TNONE:
    case LUA_TNIL:
      lctx_argerror(L, arg, fname, "key must not be nil");
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        k->u.i = lua_tointeger(L, idx);
      } else {
        lua_Number n = lua_tonumber(L, idx);
        if (isnan(n)) lctx_argerror(L, arg, fname, "key must not be NaN");
        if (!lua_numbertointeger(n, &k->u.i) || (lua_Number)k->u.i != n) {
          k->type = LCTX_TFLOAT;
          k->u.n = n;
        }
      }
      break;
    case LUA_TBOOLEAN:
      k->u.b = lua_toboolean(L, idx);
      break;
    case LUA_TSTRING:
      k->u.p = lua_tolstring(L, idx, &k->len);
      break;
    default:  /* tables, functions, userdata, threads: identity */
      k->u.p = lua_topointer(L, idx);
      break;
  }
}

int lctx_key_eq(const void *wanted, const void *bound, void *ud) {
  const lctx_key *a = wanted, *b = bound;
  (void)ud;
  if (a->type != b->type) return 0;
  switch (a->type) {
    case LUA_TNUMBER: return a->u.i == b->u.i;
    case LCTX_TFLOAT: return a->u.n == b->u.n;
    case LUA_TBOOLEAN: return a->u.b == b->u.b;
    case LUA_TSTRING:  /* short strings are interned; long ones are not */
      return a->u.p == b->u.p ||
             (a->len == b->len && memcmp(a->u.p, b->u.p, a->len) == 0);
    default: return a->u.p == b->u.p;
  }
}

/* Go's stringify: strings as they are, values with a string form through it,
** nil as <nil>, anything else by its type name. Pushes one string; never
** calls a metamethod (tostring() could raise or yield here). */
static void push_stringified(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING) return;
  if (t == LUA_TNUMBER) {
    lua_tostring(L, -1);  /* our own copy: converted in place */
    return;
  }
  if (t == LUA_TNIL) {
    lua_pushliteral(L, "<nil>");
  } else if (t == LUA_TBOOLEAN) {
    lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
  } else {
    int mt = luaL_getmetafield(L, -1, "__name");
    if (mt != LUA_TSTRING) {
      if (mt != LUA_TNIL) lua_pop(L, 1);
      lua_pushstring(L, lua_typename(L, t));
    }
  }
  lua_remove(L, -2);
}

char *lctx_fmt(const void *key, const void *value, void *ud) {
  lua_State *L = ud;
  const lctx_ud *u = value;
  (void)key;
  if (!lua_checkstack(L, 8)) return NULL;
  push_stringified(L, u->keyref);
  lua_pushliteral(L, ", ");
  push_stringified(L, u->valref);
  lua_concat(L, 3);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  char *out = malloc(n + 1);
  if (out) memcpy(out, s, n + 1);
  lua_pop(L, 1);
  return out;
}
