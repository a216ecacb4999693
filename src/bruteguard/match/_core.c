/*
 * bruteguard.match._core — the one compiled pass over a chunk of log text.
 *
 * Python builds the catalogue (one PCRE2 expression, see engine.py); this module runs it over
 * whole chunks with PCRE2's JIT and, per matched line, does in C what would otherwise cost a
 * Python loop iteration: find the set that matched (its (*MARK)), turn the time stamp into
 * POSIX seconds (cached per hour), count an authentication attempt once per connection (pid
 * bookkeeping), and hand the attempt to a sink:
 *
 *   feed(chunk, keep_lines)  → list of hits (time, address, user, jail, line), for the daemon
 *   collect(chunk, series)   → per jail and address: packed times and users, for replays
 *   skim(chunk)              → connection state only (a parallel replay's warm-up)
 *
 * What needs judgement stays in Python and is called back, cached: the year of a syslog
 * stamp (hour_start), local-time ISO stamps (parse), and what text is an address (address_of).
 * All input is attacker-controlled: every read is bounded by the match offsets.
 */
#define PY_SSIZE_T_CLEAN
#define PCRE2_CODE_UNIT_WIDTH 8
#include <Python.h>
#include <arpa/inet.h>
#include <math.h>
#include <pcre2.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ROLE_ANNOUNCE 1
#define ROLE_CONFIRM 2
#define ROLE_CLOSE 3
/* A session's first line (OpenSMTPD's "connected address="): ties the session id, which the
 * service's later lines carry instead of the address, to the address; counts nothing. */
#define ROLE_OPEN 4
/* sshd restarts a pid's bookkeeping after this long without a line (LoginGraceTime: 2 min). */
#define CONNECTION_IDLE 600.0
#define STATE_LIMIT 500000
#define ADDRESS_CACHE_LIMIT 200000
#define MAX_USERS 20
/* "message repeated N times": N beyond this adds nothing to a ban decision, and a forged
 * line must not make us store a million attempts. */
#define MAX_REPEAT 1000
/* Attempts naming a host (not an address) waiting for take_named(): the identity stage
 * drains them every batch; past this, a flood of them is counted but not kept. */
#define NAMED_LIMIT 10000
/* Longest host text handed over as a name (DNS names are at most 253 characters). */
#define NAME_MAX_LEN 255

/* ------------------------------------------------------------------ Pattern */

/* A PCRE2 expression can compile to at most 64 KiB with Debian's libpcre2 (link size 2):
 * many filters together are compiled as several parts, each searched on its own, their
 * matches taken in the order of the lines. */
#define MAX_PARTS 64

typedef struct {
    PyObject_HEAD
    pcre2_code *codes[MAX_PARTS];
    int jit[MAX_PARTS];
    int nparts;
    uint32_t groups; /* the most of any part */
    /* The expression after the syslog head (see syslog_head), when the whole expression is
     * one part of syslog lines only: the head is read in C and this runs anchored after it. */
    pcre2_code *body;
    int body_jit;
} PatternObject;

static void Pattern_dealloc(PatternObject *self) {
    for (int k = 0; k < self->nparts; k++) pcre2_code_free(self->codes[k]);
    if (self->body) pcre2_code_free(self->body);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One expression compiled (not JIT-compiled); NULL with ValueError set on failure. */
static pcre2_code *compile_part(const char *text, Py_ssize_t len) {
    pcre2_compile_context *context = pcre2_compile_context_create(NULL);
    if (!context) {
        PyErr_NoMemory();
        return NULL;
    }
    pcre2_set_newline(context, PCRE2_NEWLINE_LF);
    int error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)text, len, 0, &error, &offset, context);
    pcre2_compile_context_free(context);
    if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        PyErr_Format(PyExc_ValueError, "bad pattern at offset %zu: %s", (size_t)offset,
                     (char *)message);
    }
    return code;
}

static int Pattern_init(PatternObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"pattern", "syslog_body", NULL};
    PyObject *given;
    const char *body = NULL;
    Py_ssize_t body_len = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|y#", kwlist, &given, &body, &body_len))
        return -1;
    if (self->nparts) {
        PyErr_SetString(PyExc_RuntimeError, "Pattern is initialised once");
        return -1;
    }
    /* bytes: one expression; a tuple of bytes: the parts, searched together */
    PyObject *parts = PyBytes_Check(given) ? PyTuple_Pack(1, given) : PySequence_Tuple(given);
    if (!parts) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(parts);
    if (n < 1 || n > MAX_PARTS) {
        Py_DECREF(parts);
        PyErr_Format(PyExc_ValueError, "a pattern has 1 to %d parts", MAX_PARTS);
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *part = PyTuple_GET_ITEM(parts, k);
        if (!PyBytes_Check(part)) {
            Py_DECREF(parts);
            PyErr_SetString(PyExc_TypeError, "a pattern's parts are bytes");
            return -1;
        }
        pcre2_code *code = compile_part(PyBytes_AS_STRING(part), PyBytes_GET_SIZE(part));
        if (!code) {
            Py_DECREF(parts);
            return -1;
        }
        self->codes[self->nparts] = code;
        self->jit[self->nparts] = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
        self->nparts++;
        uint32_t groups;
        pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > self->groups) self->groups = groups;
    }
    Py_DECREF(parts);
    if (body) {
        uint32_t groups;
        if (self->nparts != 1) {
            PyErr_SetString(PyExc_ValueError, "a syslog body goes with a one-part pattern");
            return -1;
        }
        if (!(self->body = compile_part(body, body_len))) return -1;
        pcre2_pattern_info(self->body, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups != self->groups) {
            PyErr_SetString(PyExc_ValueError, "the syslog body's groups differ from the pattern's");
            return -1;
        }
        self->body_jit = pcre2_jit_compile(self->body, PCRE2_JIT_COMPLETE) == 0;
    }
    return 0;
}

/* Whether an expression compiles (within PCRE2's size limit), without JIT-compiling it. */
static PyObject *core_compiles(PyObject *module, PyObject *arg) {
    char *text;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &text, &len) < 0) return NULL;
    pcre2_code *code = compile_part(text, len);
    if (!code) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    pcre2_code_free(code);
    Py_RETURN_TRUE;
}

static PyObject *Pattern_get_groups(PatternObject *self, void *closure) {
    return PyLong_FromUnsignedLong(self->groups);
}

static PyObject *Pattern_get_jit(PatternObject *self, void *closure) {
    int all = self->nparts > 0;
    for (int k = 0; k < self->nparts; k++) all = all && self->jit[k];
    return PyBool_FromLong(all);
}

static PyObject *Pattern_get_parts(PatternObject *self, void *closure) {
    return PyLong_FromLong(self->nparts);
}

static PyObject *Pattern_get_syslog_body(PatternObject *self, void *closure) {
    return PyBool_FromLong(self->body != NULL);
}

static PyGetSetDef Pattern_getset[] = {
    {"syslog_body", (getter)Pattern_get_syslog_body, NULL,
     "whether the syslog head is read in C (the body expression runs after it)", NULL},
    {"groups", (getter)Pattern_get_groups, NULL, "number of capture groups", NULL},
    {"jit", (getter)Pattern_get_jit, NULL, "whether PCRE2's JIT compiled every part", NULL},
    {"parts", (getter)Pattern_get_parts, NULL, "number of expressions searched together", NULL},
    {NULL},
};

static PyTypeObject PatternType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bruteguard.match._core.Pattern",
    .tp_basicsize = sizeof(PatternObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A PCRE2 expression compiled (and JIT-compiled) once, for Stream.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pattern_init,
    .tp_dealloc = (destructor)Pattern_dealloc,
    .tp_getset = Pattern_getset,
};

/* ------------------------------------------------------- connection table */

/* Hosts up to this long (any IPv6 text) are compared byte for byte; longer ones (names,
 * never attributed without more evidence) by a hash. */
#define HOST_INLINE 46

typedef struct {
    uint64_t pid; /* 0: empty slot (pids are > 0; pid 0 is stored as 1<<63) */
    double last;
    uint64_t host_hash;
    unsigned char host_len;
    char host[HOST_INLINE];
    char announced;
    char counted;
    char named; /* an announcement named a host: the verdict's address takes over */
    char opened; /* the host is the one the connection's OPEN line named (its first line) */
    char owed;   /* a line naming no client waits for the pid's next line with an address */
} Connection;

/* One connection's lines may write its IPv4 peer both plainly and IPv4-mapped (OpenSSH 3.9
 * gave pam "198.51.100.7" and wrote "::ffff:198.51.100.7" itself): compare without the
 * "::ffff:" in front of a dotted quad. */
static void unmapped(const char **host, Py_ssize_t *len) {
    if (*len > 7 && *len <= 7 + 15 && (*host)[0] == ':' && strncasecmp(*host, "::ffff:", 7) == 0 &&
        memchr(*host + 7, '.', *len - 7)) {
        *host += 7;
        *len -= 7;
    }
}

static int same_host(const Connection *state, const char *host, Py_ssize_t len, uint64_t hash) {
    unmapped(&host, &len);
    if (len <= HOST_INLINE)
        return state->host_len == len && memcmp(state->host, host, len) == 0;
    return state->host_len == HOST_INLINE + 1 && state->host_hash == hash;
}

static void set_host(Connection *state, const char *host, Py_ssize_t len, uint64_t hash) {
    unmapped(&host, &len);
    if (len <= HOST_INLINE) {
        state->host_len = (unsigned char)len;
        memcpy(state->host, host, len);
    } else {
        state->host_len = HOST_INLINE + 1;
        state->host_hash = hash;
    }
}

/* ------------------------------------------------------------ address cache */

/* Raw host text → canonical address (a str, or None), so that a line's address costs a
 * lookup, not an object. Keys are compared byte for byte: no hash collision can make one
 * host text stand for another's address. */
#define ADDRESS_INLINE 64

typedef struct {
    uint64_t hash;
    unsigned char len; /* 0: empty slot */
    char text[ADDRESS_INLINE];
    PyObject *address;
} AddressSlot;

typedef struct {
    AddressSlot *slots;
    size_t capacity;
    size_t used;
} AddressCache;

static int cache_init(AddressCache *cache, size_t capacity) {
    cache->slots = PyMem_Calloc(capacity, sizeof(AddressSlot));
    if (!cache->slots) return -1;
    cache->capacity = capacity;
    cache->used = 0;
    return 0;
}

static void cache_clear(AddressCache *cache) {
    for (size_t i = 0; i < cache->capacity; i++) {
        if (cache->slots[i].len) Py_CLEAR(cache->slots[i].address);
    }
    memset(cache->slots, 0, cache->capacity * sizeof(AddressSlot));
    cache->used = 0;
}

static void cache_free(AddressCache *cache) {
    if (!cache->slots) return;
    cache_clear(cache);
    PyMem_Free(cache->slots);
    cache->slots = NULL;
}

static AddressSlot *cache_find(AddressCache *cache, const char *text, Py_ssize_t len,
                               uint64_t hash) {
    size_t mask = cache->capacity - 1;
    for (size_t i = (size_t)(hash >> 7) & mask;; i = (i + 1) & mask) {
        AddressSlot *slot = &cache->slots[i];
        if (!slot->len || (slot->hash == hash && slot->len == len &&
                           memcmp(slot->text, text, len) == 0))
            return slot;
    }
}

static int cache_grow(AddressCache *cache) {
    AddressCache bigger;
    if (cache_init(&bigger, cache->capacity * 2) < 0) return -1;
    for (size_t i = 0; i < cache->capacity; i++) {
        AddressSlot *slot = &cache->slots[i];
        if (slot->len) *cache_find(&bigger, slot->text, slot->len, slot->hash) = *slot;
    }
    bigger.used = cache->used;
    PyMem_Free(cache->slots);
    *cache = bigger;
    return 0;
}

typedef struct {
    Connection *slots;
    size_t capacity; /* a power of two */
    size_t used;
} ConnectionTable;

static int table_init(ConnectionTable *table, size_t capacity) {
    table->slots = PyMem_Calloc(capacity, sizeof(Connection));
    if (!table->slots) return -1;
    table->capacity = capacity;
    table->used = 0;
    return 0;
}

static inline size_t slot_of(uint64_t pid, size_t mask) {
    return (size_t)((pid * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

static Connection *table_find(ConnectionTable *table, uint64_t pid) {
    size_t mask = table->capacity - 1;
    for (size_t i = slot_of(pid, mask);; i = (i + 1) & mask) {
        Connection *slot = &table->slots[i];
        if (slot->pid == pid || slot->pid == 0) return slot;
    }
}

/* Rebuild the table without the connections idle since before `horizon`, at a size that
 * leaves room: the table stays as small as the connections really open, which keeps it in
 * the processor's cache however long the log. */
static int table_rebuild(ConnectionTable *table, double horizon) {
    size_t live = 0;
    for (size_t i = 0; i < table->capacity; i++) {
        if (table->slots[i].pid && table->slots[i].last >= horizon) live++;
    }
    size_t capacity = table->capacity;
    while (live * 4 > capacity) capacity *= 2;
    ConnectionTable fresh;
    if (table_init(&fresh, capacity) < 0) return -1;
    for (size_t i = 0; i < table->capacity; i++) {
        Connection *slot = &table->slots[i];
        if (slot->pid && slot->last >= horizon) {
            *table_find(&fresh, slot->pid) = *slot;
            fresh.used++;
        }
    }
    PyMem_Free(table->slots);
    *table = fresh;
    return 0;
}

/* A slot for a new connection of `pid` (whose slot `found` was empty or stale) at `moment`. */
static Connection *table_claim(ConnectionTable *table, Connection *found, uint64_t pid,
                               double moment) {
    if (found->pid) return found; /* reuse the pid's own slot */
    if ((table->used + 1) * 2 > table->capacity) {
        if (table->used >= STATE_LIMIT) { /* a flood of live connections: start over */
            memset(table->slots, 0, table->capacity * sizeof(Connection));
            table->used = 0;
        } else if (table_rebuild(table, moment - CONNECTION_IDLE) < 0) {
            return NULL;
        }
        found = table_find(table, pid);
    }
    table->used++;
    found->pid = pid;
    return found;
}

/* ------------------------------------------------------------------ Stream */

/* Stamp kinds (signature.Stamp): how a frame writes its time. */
#define STAMP_SYSLOG 0 /* "Mmm dd hh:mm:ss[.f]" or RFC 3339 */
#define STAMP_YMD 1    /* "YYYY-MM-DD hh:mm:ss[.f|,f][ ±hhmm]", "YYYY/MM/DD hh:mm:ss" */
#define STAMP_CTIME 2  /* "[Www ]Mmm dd hh:mm:ss[.f] YYYY" */
#define STAMP_CLF 3    /* "dd/Mmm/YYYY:hh:mm:ss ±hhmm", "dd-Mmm-YYYY hh:mm:ss[.mmm][ ±hhmm]" */
#define STAMP_YYMMDD 4 /* "YYMMDD hh:mm:ss", the hour space-padded (MySQL <= 5.5) */
#define STAMP_TAI64N 5 /* "@" and 24 lowercase hex digits: a TAI64N label (multilog, s6-log) */

/* How a check's connection is keyed (signature.py): by the syslog pid alone; by a session id
 * (hexadecimal) whose OPEN line names the address; by the pid, whose OPEN line (or, failing
 * that, its next line with an address) names the address of lines that name no client; a
 * pid's line with an address that counts only for such a waiting line. */
#define KEY_PID 0
#define KEY_SESSION 1
#define KEY_PID_OPENED 2
#define KEY_PID_SETTLES 3

/* Group numbers of one set of signatures (the stamp is group 1 in every frame); user, pid,
 * repeat and count are 0 when the set has no such group (a log without pids, a signature
 * without a user or a count). */
typedef struct {
    int host, user, pid, repeat, count, role, weight, stamp_kind;
    int ptr_host; /* the service may write a PTR's text here, even one that reads as an address */
    int keyed;    /* KEY_*: what tells connections apart, and where a host-less line's is */
    int waits;    /* counts nothing: the attempt's verdict, or its connection's close, will */
    Py_ssize_t njails;
    Py_ssize_t *jails;
} Check;

typedef struct {
    PyObject_HEAD
    PatternObject *pattern;
    pcre2_match_data *match[MAX_PARTS]; /* one per part */
    Check *checks;
    Py_ssize_t nchecks;
    PyObject *jail_names; /* tuple of str */
    PyObject *hour_start; /* bytes "Mmm dd hh..." → float | None */
    PyObject *parse;      /* bytes stamp → float | None */
    PyObject *address_of; /* bytes → str | None */
    int plain_addresses;  /* address_of is address_from_log: plain address text read in C */
    PyObject *named;      /* list of (time, name, user, jail, line): attempts naming a host */
    AddressCache addresses;
    ConnectionTable connections;
    uint64_t seed; /* of the hash for long host texts */
    double hours[12 * 32 * 24]; /* syslog hour starts; NAN: not known yet */
    long hours_day;             /* the clock's day the hour cache belongs to (live logs) */
    int live;
    long long iso_hour_key;
    double iso_hour_start;
    /* the last stamp parsed, to skip the bursts of lines within one second */
    char last_stamp[48];
    Py_ssize_t last_stamp_len;
    double last_moment;
    /* the last matched line's moment, host and user text (cut to 255 bytes), whatever it
     * counted: `bruteguard test` shows a line that waits for its verdict (pam's rhost=) */
    int remember; /* keep the last match for last_match(): feed() does, collect() need not */
    int has_last_match;
    double last_match_moment;
    char last_match_host[256], last_match_user[256];
    Py_ssize_t last_match_host_len, last_match_user_len;
    long long lines, matched, attempts, unattributed, bad_time, match_errors;
    /* The chunk's copy the expression runs on, kept from chunk to chunk: a replay's 8 MiB
     * chunks would otherwise each cost a fresh allocation, faulted in page by page. */
    char *text;
    Py_ssize_t text_capacity;
} StreamObject;

static void clear_hours(StreamObject *self) {
    for (size_t i = 0; i < sizeof self->hours / sizeof self->hours[0]; i++) self->hours[i] = NAN;
    self->iso_hour_key = -1;
    self->last_stamp_len = 0;
}

static void Stream_dealloc(StreamObject *self) {
    for (int k = 0; k < MAX_PARTS; k++)
        if (self->match[k]) pcre2_match_data_free(self->match[k]);
    for (Py_ssize_t i = 0; i < self->nchecks; i++) PyMem_Free(self->checks[i].jails);
    PyMem_Free(self->checks);
    PyMem_Free(self->connections.slots);
    PyMem_Free(self->text);
    Py_XDECREF(self->pattern);
    Py_XDECREF(self->jail_names);
    Py_XDECREF(self->hour_start);
    Py_XDECREF(self->parse);
    Py_XDECREF(self->address_of);
    Py_XDECREF(self->named);
    cache_free(&self->addresses);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Stream_init(StreamObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"pattern", "checks",     "jails", "hour_start",      "parse",
                             "address_of", "live", "plain_addresses", NULL};
    PyObject *pattern, *checks, *jails, *hour_start, *parse, *address_of;
    int live, plain_addresses = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OOOp|p", kwlist, &PatternType, &pattern,
                                     &PyTuple_Type, &checks, &PyTuple_Type, &jails, &hour_start,
                                     &parse, &address_of, &live, &plain_addresses))
        return -1;
    if (self->pattern) {
        PyErr_SetString(PyExc_RuntimeError, "Stream is initialised once");
        return -1;
    }
    PatternObject *compiled = (PatternObject *)pattern;
    Py_ssize_t n = PyTuple_GET_SIZE(checks);
    self->checks = PyMem_Calloc(n ? n : 1, sizeof(Check));
    if (!self->checks) {
        PyErr_NoMemory();
        return -1;
    }
    self->nchecks = n;
    Py_ssize_t njails = PyTuple_GET_SIZE(jails);
    for (Py_ssize_t i = 0; i < n; i++) {
        Check *check = &self->checks[i];
        PyObject *jail_indices;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(checks, i), "iiiiiiipO!iii", &check->host,
                              &check->user, &check->pid, &check->repeat, &check->count,
                              &check->role, &check->weight, &check->ptr_host, &PyTuple_Type,
                              &jail_indices, &check->stamp_kind, &check->keyed, &check->waits))
            return -1;
        if (check->weight < 1 || check->weight > MAX_REPEAT) {
            PyErr_SetString(PyExc_ValueError, "a check's weight must be 1..1000");
            return -1;
        }
        int groups[] = {check->host, check->user, check->pid, check->repeat, check->count};
        /* 0: no such group (host 0: an address-less message, or a session's later line) */
        for (int g = 0; g < 5; g++) {
            if (groups[g] < 0 || (uint32_t)groups[g] > compiled->groups) {
                PyErr_SetString(PyExc_ValueError, "check names a group the pattern lacks");
                return -1;
            }
        }
        if (check->stamp_kind < STAMP_SYSLOG || check->stamp_kind > STAMP_TAI64N) {
            PyErr_SetString(PyExc_ValueError, "unknown stamp kind");
            return -1;
        }
        if (check->role < ROLE_ANNOUNCE || check->role > ROLE_OPEN ||
            check->keyed < KEY_PID || check->keyed > KEY_PID_SETTLES ||
            (check->role == ROLE_OPEN && !(check->keyed && check->pid && check->host)) ||
            (check->keyed == KEY_PID_SETTLES && !(check->pid && check->host))) {
            PyErr_SetString(PyExc_ValueError, "unknown role");
            return -1;
        }
        check->njails = PyTuple_GET_SIZE(jail_indices);
        check->jails = PyMem_Calloc(check->njails ? check->njails : 1, sizeof(Py_ssize_t));
        if (!check->jails) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t j = 0; j < check->njails; j++) {
            Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(jail_indices, j));
            if (index == -1 && PyErr_Occurred()) return -1;
            if (index < 0 || index >= njails) {
                PyErr_SetString(PyExc_ValueError, "check names an unknown jail");
                return -1;
            }
            check->jails[j] = index;
        }
    }
    int matches = 1;
    for (int k = 0; k < compiled->nparts; k++)
        matches = matches && (self->match[k] = pcre2_match_data_create(compiled->groups + 1, NULL));
    self->named = PyList_New(0);
    if (!self->named) return -1;
    if (!matches || table_init(&self->connections, 1024) < 0 ||
        cache_init(&self->addresses, 4096) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(pattern);
    self->pattern = compiled;
    Py_INCREF(jails);
    self->jail_names = jails;
    Py_INCREF(hour_start);
    self->hour_start = hour_start;
    Py_INCREF(parse);
    self->parse = parse;
    Py_INCREF(address_of);
    self->address_of = address_of;
    self->plain_addresses = plain_addresses;
    self->live = live;
    if (getentropy(&self->seed, sizeof self->seed) < 0) self->seed = (uint64_t)time(NULL);
    self->hours_day = (long)(time(NULL) / 86400);
    clear_hours(self);
    return 0;
}

/* A Python callback's float result; 0 with *ok = 0 for None or a bad value. */
static int call_for_time(PyObject *function, const char *text, Py_ssize_t len, double *out) {
    PyObject *result = PyObject_CallFunction(function, "y#", text, len);
    if (!result) return -1;
    int ok = 0;
    if (result != Py_None) {
        *out = PyFloat_AsDouble(result);
        if (*out == -1.0 && PyErr_Occurred()) {
            Py_DECREF(result);
            return -1;
        }
        ok = 1;
    }
    Py_DECREF(result);
    return ok;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Seconds and an optional fraction: "ss" or "ss.fffffffff"; -1 if malformed. */
static double parse_seconds(const char *s, Py_ssize_t len) {
    if (len < 2 || !is_digit(s[0]) || !is_digit(s[1])) return -1;
    double seconds = (s[0] - '0') * 10 + (s[1] - '0');
    if (len == 2) return seconds;
    if (s[2] != '.' || len < 4) return -1;
    double scale = 0.1;
    for (Py_ssize_t i = 3; i < len; i++) {
        if (!is_digit(s[i])) return -1;
        seconds += (s[i] - '0') * scale;
        scale /= 10;
    }
    return seconds;
}

static int two_digits(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* "Mmm dd hh:mm:ss[.f]" → seconds; 1 ok, 0 not a real time, -1 Python error. */
static int syslog_time(StreamObject *self, const char *s, Py_ssize_t len, double *out) {
    if (len < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':') return 0;
    int month = -1;
    for (int m = 0; m < 12; m++) {
        if (memcmp(s, MONTHS + 3 * m, 3) == 0) {
            month = m;
            break;
        }
    }
    if (month < 0 || !(s[4] == ' ' || is_digit(s[4])) || !is_digit(s[5]) || !is_digit(s[7]) ||
        !is_digit(s[8]) || !is_digit(s[10]) || !is_digit(s[11]))
        return 0;
    int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
    int hour = two_digits(s + 7);
    int minute = two_digits(s + 10);
    double seconds = parse_seconds(s + 13, len - 13);
    if (day < 1 || day > 31 || hour > 23 || minute > 59 || seconds < 0 || seconds >= 61) return 0;
    double *cached = &self->hours[(month * 32 + day) * 24 + hour];
    if (isnan(*cached)) {
        int found = call_for_time(self->hour_start, s, 9, cached);
        if (found <= 0) {
            *cached = NAN;
            return found;
        }
    }
    *out = *cached + minute * 60 + seconds;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SS[.f][Z|±HH[:]MM]" → seconds; 1 ok, 0 not a real time, -1 error. */
static int iso_time(StreamObject *self, const char *s, Py_ssize_t len, double *out) {
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return 0;
    for (int i = 0; i < 19; i++) {
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !is_digit(s[i])) return 0;
    }
    int year = two_digits(s) * 100 + two_digits(s + 2);
    int month = two_digits(s + 5), day = two_digits(s + 8);
    int hour = two_digits(s + 11), minute = two_digits(s + 14);
    Py_ssize_t zone = 19;
    while (zone < len && s[zone] != 'Z' && s[zone] != '+' && s[zone] != '-') zone++;
    double seconds = parse_seconds(s + 17, zone - 17);
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || seconds < 0 || seconds >= 61)
        return 0;
    long long days = days_from_civil(year, (unsigned)month, (unsigned)day);
    if (zone == len) { /* no offset: local time, which only the C library's tz rules know */
        long long key = days * 24 + hour;
        if (key != self->iso_hour_key) {
            char hour_stamp[20];
            memcpy(hour_stamp, s, 13);
            memcpy(hour_stamp + 13, ":00:00", 6);
            int found = call_for_time(self->parse, hour_stamp, 19, &self->iso_hour_start);
            if (found <= 0) return found;
            self->iso_hour_key = key;
        }
        *out = self->iso_hour_start + minute * 60 + seconds;
        return 1;
    }
    int offset = 0;
    if (s[zone] != 'Z') {
        const char *z = s + zone + 1;
        Py_ssize_t rest = len - zone - 1;
        if (rest == 5 && z[2] == ':') {
            if (!is_digit(z[0]) || !is_digit(z[1]) || !is_digit(z[3]) || !is_digit(z[4])) return 0;
            offset = two_digits(z) * 3600 + two_digits(z + 3) * 60;
        } else if (rest == 4) {
            if (!is_digit(z[0]) || !is_digit(z[1]) || !is_digit(z[2]) || !is_digit(z[3])) return 0;
            offset = two_digits(z) * 3600 + two_digits(z + 2) * 60;
        } else {
            return 0;
        }
        if (s[zone] == '-') offset = -offset;
    } else if (zone + 1 != len) {
        return 0;
    }
    *out = (double)(days * 86400 + hour * 3600 + minute * 60 - offset) + seconds;
    return 1;
}

static int month_of(const char *s) {
    for (int m = 0; m < 12; m++)
        if (memcmp(s, MONTHS + 3 * m, 3) == 0) return m + 1;
    return 0;
}

/* Another frame's stamp rewritten as RFC 3339 ("YYYY-MM-DDThh:mm:ss[.f][±hh:mm]") into
 * out (at least 48 bytes): its length, or 0 when the text is not that kind of stamp. */
static Py_ssize_t as_iso(int kind, const char *s, Py_ssize_t len, char *out) {
    char year[4], month[2], day[2], clock[8];
    const char *rest; /* after the seconds: ".f" and/or a zone, in the kind's own spelling */
    Py_ssize_t rest_len;
    if (kind == STAMP_YMD) { /* YYYY-MM-DD hh:mm:ss or YYYY/MM/DD; MariaDB pads " 6:50" */
        if (len < 18 || (s[4] != '-' && s[4] != '/') || s[7] != s[4]) return 0;
        Py_ssize_t at = 10;
        while (at < len && at < 12 && s[at] == ' ') at++;
        if (at == 10) return 0;
        Py_ssize_t hour_len = (at + 1 < len && s[at + 1] == ':') ? 1 : 2;
        if (len < at + hour_len + 6) return 0;
        memcpy(year, s, 4);
        memcpy(month, s + 5, 2);
        memcpy(day, s + 8, 2);
        clock[0] = hour_len == 1 ? '0' : s[at];
        memcpy(clock + 1, s + at + hour_len - 1, 7);
        rest = s + at + hour_len + 6;
        rest_len = len - (at + hour_len + 6);
    } else if (kind == STAMP_CTIME) { /* [Www ]Mmm dd hh:mm:ss[.f] YYYY */
        if (len >= 8 && s[3] == ' ' && s[7] == ' ' && month_of(s + 4)) { /* a weekday */
            s += 4;
            len -= 4;
        }
        if (len < 20 || s[3] != ' ' || s[6] != ' ' || s[len - 5] != ' ') return 0;
        int m = month_of(s);
        if (!m) return 0;
        month[0] = (char)('0' + m / 10);
        month[1] = (char)('0' + m % 10);
        day[0] = s[4] == ' ' ? '0' : s[4];
        day[1] = s[5];
        memcpy(clock, s + 7, 8);
        memcpy(year, s + len - 4, 4);
        rest = s + 15;
        rest_len = len - 5 - 15;
    } else if (kind == STAMP_CLF) {
        /* dd/Mmm/YYYY:hh:mm:ss ±hhmm; dd-Mmm-YYYY hh:mm:ss ±hhmm (PHP); BIND's own log:
         * dd-Mmm-YYYY hh:mm:ss.mmm, local time (no zone) */
        int slash = len >= 3 && s[2] == '/';
        if (len < 20 || (slash && len != 26) || (s[2] != '/' && s[2] != '-') || s[6] != s[2] ||
            s[11] != (slash ? ':' : ' ') || (len > 20 && s[20] != ' ' && s[20] != '.'))
            return 0;
        int m = month_of(s + 3);
        if (!m) return 0;
        memcpy(day, s, 2);
        month[0] = (char)('0' + m / 10);
        month[1] = (char)('0' + m % 10);
        memcpy(year, s + 7, 4);
        memcpy(clock, s + 12, 8);
        rest = s + 20;
        rest_len = len - 20;
    } else if (kind == STAMP_YYMMDD) { /* YYMMDD hh:mm:ss, " 0:04:00" for hours below 10 */
        if (len != 15 || s[6] != ' ' || s[9] != ':' || s[12] != ':') return 0;
        year[0] = '2';
        year[1] = '0';
        memcpy(year + 2, s, 2);
        memcpy(month, s + 2, 2);
        memcpy(day, s + 4, 2);
        memcpy(clock, s + 7, 8);
        if (clock[0] == ' ') clock[0] = '0';
        rest = s + 15;
        rest_len = 0;
    } else {
        return 0;
    }
    if (rest_len > 24) return 0;
    Py_ssize_t n = 0;
    memcpy(out, year, 4);
    out[4] = '-';
    memcpy(out + 5, month, 2);
    out[7] = '-';
    memcpy(out + 8, day, 2);
    out[10] = 'T';
    memcpy(out + 11, clock, 8);
    n = 19;
    Py_ssize_t i = 0;
    if (i < rest_len && (rest[i] == '.' || rest[i] == ',')) { /* a fraction */
        out[n++] = '.';
        for (i++; i < rest_len && is_digit(rest[i]); i++) out[n++] = rest[i];
    }
    if (i < rest_len && rest[i] == ' ') i++; /* " +0100" (exim, access logs) */
    for (; i < rest_len; i++) out[n++] = rest[i];
    return n;
}

/* A syslog-family stamp in its other spellings made the two the parsers read: "Nov 2 …"
 * (busybox, some relays: the day unpadded) → "Nov  2 …"; "YYYY-MM-DD hh:mm:ss…" (macOS,
 * Dovecot's own log) → "YYYY-MM-DDThh:mm:ss…". Returns the length written to out (at most
 * 48 bytes), or 0 when the stamp needs no change. */
static Py_ssize_t syslog_spelling(const char *s, Py_ssize_t len, char *out) {
    if (len >= 6 && len < 47 && s[3] == ' ' && is_digit(s[4]) && s[5] == ' ') {
        memcpy(out, s, 4);
        out[4] = ' ';
        memcpy(out + 5, s + 4, len - 4);
        return len + 1;
    }
    if (len >= 19 && len <= 48 && s[4] == '-' && s[10] == ' ') {
        memcpy(out, s, len);
        out[10] = 'T';
        return len;
    }
    return 0;
}

/* A TAI64N label: 16 hex digits of seconds, 2^62 + 10 + the UTC time (djb's libtai and
 * tai64nlocal count TAI's 10 s lead of 1972, not the leap seconds since), then 8 of
 * nanoseconds. */
static int tai64n_time(const char *s, Py_ssize_t len, double *out) {
    if (len != 25 || s[0] != '@') return 0;
    uint64_t seconds = 0, nanoseconds = 0;
    for (Py_ssize_t i = 1; i < len; i++) {
        int digit = is_digit(s[i]) ? s[i] - '0' : (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10 : -1;
        if (digit < 0) return 0;
        if (i <= 16)
            seconds = seconds << 4 | (uint64_t)digit;
        else
            nanoseconds = nanoseconds << 4 | (uint64_t)digit;
    }
    const uint64_t epoch = 4611686018427387914ULL; /* 2^62 + 10 */
    if (seconds < epoch || seconds - epoch > 253402300799ULL || nanoseconds > 999999999) return 0;
    *out = (double)(seconds - epoch) + (double)nanoseconds / 1e9;
    return 1;
}

static int stamp_time(StreamObject *self, int kind, const char *s, Py_ssize_t len, double *out) {
    if (len == self->last_stamp_len && memcmp(s, self->last_stamp, len) == 0) {
        *out = self->last_moment;
        return 1;
    }
    int found;
    char spelled[48];
    if (kind == STAMP_TAI64N) {
        found = tai64n_time(s, len, out);
    } else if (kind != STAMP_SYSLOG) {
        Py_ssize_t iso_len = as_iso(kind, s, len, spelled);
        found = iso_len ? iso_time(self, spelled, iso_len, out) : 0;
    } else {
        Py_ssize_t respelled = syslog_spelling(s, len, spelled);
        const char *t = respelled ? spelled : s;
        Py_ssize_t t_len = respelled ? respelled : len;
        found = t_len >= 5 && t[4] == '-' ? iso_time(self, t, t_len, out)
                                          : syslog_time(self, t, t_len, out);
    }
    if (found == 1 && len <= (Py_ssize_t)sizeof self->last_stamp) {
        memcpy(self->last_stamp, s, len);
        self->last_stamp_len = len;
        self->last_moment = *out;
    }
    return found;
}

static uint64_t hash_bytes(uint64_t seed, const char *s, Py_ssize_t len) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* The canonical address of plain address text, as identity.address_from_log writes it, by
 * the same inet_pton/inet_ntop: a dotted quad is its own text, IPv4-mapped IPv6 its IPv4
 * address, other IPv6 inet_ntop's RFC 5952 form. NULL without an error for anything else
 * (brackets, a zone, blanks, non-ASCII, the deprecated ::a.b.c.d, not an address): the
 * Python function decides those, as it decides what is no address. A replay meets tens of
 * thousands of new addresses; a Python call each cost ~7,000 instructions. */
static PyObject *plain_address(const char *host, Py_ssize_t len) {
    char text[ADDRESS_INLINE + 1];
    int colon = 0;
    if (len > ADDRESS_INLINE) return NULL;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = host[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == '.' || c == ':'))
            return NULL;
        colon |= c == ':';
    }
    memcpy(text, host, len);
    text[len] = 0;
    unsigned char packed[16];
    if (!colon) {
        if (inet_pton(AF_INET, text, packed) != 1) return NULL;
        return PyUnicode_FromStringAndSize(text, len);
    }
    if (inet_pton(AF_INET6, text, packed) != 1) return NULL;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zeros[12] = {0};
    char out[INET6_ADDRSTRLEN];
    if (memcmp(packed, mapped, 12) == 0) {
        if (!inet_ntop(AF_INET, packed + 12, out, sizeof out)) return NULL;
    } else if (memcmp(packed, zeros, 12) == 0) {
        return NULL; /* ::a.b.c.d: Python writes it as ipaddress does */
    } else if (!inet_ntop(AF_INET6, packed, out, sizeof out)) {
        return NULL;
    }
    return PyUnicode_FromString(out);
}

/* The canonical address for raw host text (borrowed; Py_None if not an address). */
static PyObject *address_for(StreamObject *self, const char *host, Py_ssize_t len) {
    /* No address is written in more than 64 characters (IPv6 with a zone at most). */
    if (len <= 0 || len > ADDRESS_INLINE) return Py_None;
    AddressCache *cache = &self->addresses;
    uint64_t hash = hash_bytes(0, host, len);
    AddressSlot *slot = cache_find(cache, host, len, hash);
    if (slot->len) return slot->address;
    PyObject *address = self->plain_addresses ? plain_address(host, len) : NULL;
    if (!address && PyErr_Occurred()) return NULL;
    if (!address) address = PyObject_CallFunction(self->address_of, "y#", host, len);
    if (!address) return NULL;
    if (address != Py_None && !PyUnicode_Check(address)) {
        Py_DECREF(address);
        PyErr_SetString(PyExc_TypeError, "address_of must return str or None");
        return NULL;
    }
    if (cache->used >= ADDRESS_CACHE_LIMIT) {
        cache_clear(cache);
    } else if ((cache->used + 1) * 2 > cache->capacity) {
        if (cache_grow(cache) < 0) {
            Py_DECREF(address);
            return PyErr_NoMemory();
        }
    }
    slot = cache_find(cache, host, len, hash);
    slot->hash = hash;
    slot->len = (unsigned char)len;
    memcpy(slot->text, host, len);
    slot->address = address; /* the cache owns it */
    cache->used++;
    return address;
}

/* The check of the set that matched: every set starts with (*MARK:N), N its index. */
static const Check *check_of(const StreamObject *self, pcre2_match_data *match) {
    PCRE2_SPTR mark = pcre2_get_mark(match);
    if (!mark || !*mark) return NULL;
    Py_ssize_t index = 0;
    for (; *mark; mark++) {
        if (*mark < '0' || *mark > '9' || index > self->nchecks) return NULL;
        index = index * 10 + (*mark - '0');
    }
    return index < self->nchecks ? &self->checks[index] : NULL;
}

enum Sink { SINK_HITS, SINK_SERIES, SINK_NONE };

/* A count group's number (rsyslog's "repeated N times", a service's "N attempts"): 1 when
 * the group is absent or unset, at most MAX_REPEAT. */
static long group_number(const char *text, const PCRE2_SIZE *ovector, int group) {
    if (!group || ovector[2 * group] == PCRE2_UNSET) return 1;
    long count = 0;
    for (PCRE2_SIZE i = ovector[2 * group]; i < ovector[2 * group + 1] && count <= MAX_REPEAT; i++)
        count = count * 10 + (text[i] - '0');
    if (count < 1) return 1;
    return count > MAX_REPEAT ? MAX_REPEAT : count;
}

/* Keep an attempt that names a host instead of an address, for the identity stage to tie
 * to a real connection (or not): (time, name, user, jail, line) per jail and attempt. */
static int add_named(StreamObject *self, const Check *check, const char *text,
                     const PCRE2_SIZE *ovector, double moment, long count) {
    if (PyList_GET_SIZE(self->named) >= NAMED_LIMIT) return 0;
    /* an address-less message (host group 0) gives the empty name */
    Py_ssize_t host_len = check->host ? ovector[2 * check->host + 1] - ovector[2 * check->host] : 0;
    if (host_len > NAME_MAX_LEN) host_len = NAME_MAX_LEN;
    Py_ssize_t user_len = ovector[2 * check->user + 1] - ovector[2 * check->user];
    int has_user = check->user && ovector[2 * check->user] != PCRE2_UNSET && user_len > 0;
    PyObject *name =
        PyUnicode_DecodeUTF8(text + ovector[2 * check->host], host_len, "backslashreplace");
    PyObject *user = has_user ? PyUnicode_DecodeUTF8(text + ovector[2 * check->user], user_len,
                                                     "backslashreplace")
                              : Py_NewRef(Py_None);
    PyObject *line =
        PyUnicode_DecodeUTF8(text + ovector[0] + 1, ovector[1] - ovector[0] - 1, "backslashreplace");
    PyObject *when = PyFloat_FromDouble(moment);
    int failed = !name || !user || !line || !when;
    for (Py_ssize_t j = 0; !failed && j < check->njails; j++) {
        PyObject *jail = PyTuple_GET_ITEM(self->jail_names, check->jails[j]);
        PyObject *hit = PyTuple_Pack(5, when, name, user, jail, line);
        for (long k = 0; hit && !failed && k < count; k++)
            failed = PyList_GET_SIZE(self->named) < NAMED_LIMIT &&
                     PyList_Append(self->named, hit) < 0;
        failed = failed || !hit;
        Py_XDECREF(hit);
    }
    Py_XDECREF(name);
    Py_XDECREF(user);
    Py_XDECREF(line);
    Py_XDECREF(when);
    return failed ? -1 : 0;
}

/* Add `count` attempts of `address` to a jail's series: series[jail][address] = [times, users]. */
static int add_to_series(PyObject *series, Py_ssize_t jail, PyObject *address, double moment,
                         long count, const char *user, Py_ssize_t user_len) {
    PyObject *by_address = PyList_GET_ITEM(series, jail);
    PyObject *entry = PyDict_GetItemWithError(by_address, address);
    if (!entry) {
        if (PyErr_Occurred()) return -1;
        entry = Py_BuildValue("[NN]", PyByteArray_FromStringAndSize(NULL, 0), PyDict_New());
        if (!entry) return -1;
        int failed = PyDict_SetItem(by_address, address, entry);
        Py_DECREF(entry);
        if (failed) return -1;
    }
    PyObject *times = PyList_GET_ITEM(entry, 0);
    Py_ssize_t size = PyByteArray_GET_SIZE(times);
    if (PyByteArray_Resize(times, size + count * (Py_ssize_t)sizeof(double)) < 0) return -1;
    char *end = PyByteArray_AS_STRING(times) + size;
    for (long i = 0; i < count; i++) memcpy(end + i * sizeof(double), &moment, sizeof(double));
    if (!user) return 0;
    PyObject *users = PyList_GET_ITEM(entry, 1);
    PyObject *name = PyBytes_FromStringAndSize(user, user_len);
    if (!name) return -1;
    PyObject *seen = PyDict_GetItemWithError(users, name);
    int failed = 0;
    if (seen) {
        PyObject *more = PyLong_FromLong(PyLong_AsLong(seen) + count);
        failed = !more || PyDict_SetItem(users, name, more);
        Py_XDECREF(more);
    } else if (PyErr_Occurred()) {
        failed = 1;
    } else if (PyDict_GET_SIZE(users) < MAX_USERS) {
        PyObject *first = PyLong_FromLong(count);
        failed = !first || PyDict_SetItem(users, name, first);
        Py_XDECREF(first);
    }
    Py_DECREF(name);
    return failed ? -1 : 0;
}

static void remember_match(StreamObject *self, const Check *check, const char *text,
                           const PCRE2_SIZE *ovector, double moment, const char *host,
                           Py_ssize_t host_len) {
    if (!self->remember) return; /* `bruteguard test` asks, through feed(); a replay need not pay */
    self->has_last_match = 1;
    self->last_match_moment = moment;
    self->last_match_host_len = host_len < 255 ? host_len : 255;
    memcpy(self->last_match_host, host, self->last_match_host_len);
    self->last_match_user_len = -1;
    if (check->user && ovector[2 * check->user] != PCRE2_UNSET) {
        Py_ssize_t len = ovector[2 * check->user + 1] - ovector[2 * check->user];
        self->last_match_user_len = len < 255 ? len : 255;
        memcpy(self->last_match_user, text + ovector[2 * check->user], self->last_match_user_len);
    }
}

/* CRLF line ends (logs copied from Windows hosts, some relays) made LF, in place: a line's
 * "\r" is never part of a field (a user name "root\r"), and the signatures' fixed tails
 * still end their lines. A lone "\r" inside a line is the line's text and stays. Returns
 * the new size. */
static Py_ssize_t strip_crlf(char *text, Py_ssize_t size) {
    Py_ssize_t w = 0;
    for (Py_ssize_t r = 0; r < size; r++) {
        if (text[r] == '\r' && (r + 1 == size || text[r + 1] == '\n')) continue;
        text[w++] = text[r];
    }
    return w;
}

/* series[-1][address] += extra: attempts of a line counted in more than one jail, beyond
 * the first, so that a table of addresses can show each attempt once. */
static int add_shared(PyObject *series, PyObject *address, long extra) {
    PyObject *shared = PyList_GET_ITEM(series, PyList_GET_SIZE(series) - 1);
    PyObject *seen = PyDict_GetItemWithError(shared, address);
    if (!seen && PyErr_Occurred()) return -1;
    PyObject *total = PyLong_FromLong((seen ? PyLong_AsLong(seen) : 0) + extra);
    if (!total) return -1;
    int failed = PyDict_SetItem(shared, address, total);
    Py_DECREF(total);
    return failed;
}

/* ------------------------------------------------------------ syslog head */

/* The syslog frame's head (signature.SYSLOG: "(?:<PRI>V )?STAMP (?:<F.L> )?(?>HOST ?FACILITY.LEVEL ?)")
 * read in plain C: PCRE2 spent ~470 instructions a line on it, and most lines of a syslog
 * file are read no further. Every optional part of it is decided by the next byte, as in
 * the expression (the stamp's forms and fractions must be followed by a blank; the host and
 * facility are atomic there), so this takes the one reading PCRE2 would. The exception is
 * FreeBSD's "<10.5> " after the stamp, which PCRE2 may also read as a host: UNSURE, and the
 * whole expression decides that line. */
enum { HEAD_NONE, HEAD_OK, HEAD_UNSURE };

static const char *const FACILITIES[] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", NULL};
static const char *const LEVELS[] = {"emerg", "panic", "alert", "crit", "err", "error",
                                     "warn", "warning", "notice", "info", "debug", NULL};

static int one_of(const char *const *words, const char *s, Py_ssize_t len) {
    for (; *words; words++)
        if ((Py_ssize_t)strlen(*words) == len && memcmp(*words, s, len) == 0) return 1;
    return 0;
}

/* A byte that ends a host token: a blank (\s: \t \n \v \f \r and space) or a bracket. */
static unsigned char ENDS_HOST[256];

static void init_syslog_tables(void) {
    const char *ends = " \t\n\v\f\r[]";
    for (const char *c = ends; *c; c++) ENDS_HOST[(unsigned char)*c] = 1;
}

/* The line s[0, len), which s[len] == '\n' ends (every read below stops at it: each byte
 * read is checked after the one before it, and no test passes a "\n" except the host's end).
 * On HEAD_OK the stamp is s[*stamp, *stamp_end) and the program part starts at s + *after. */
static int syslog_head(const char *text, Py_ssize_t len, Py_ssize_t *stamp, Py_ssize_t *stamp_end,
                       Py_ssize_t *after) {
    const unsigned char *s = (const unsigned char *)text;
#define DIGIT(i) ((unsigned)(s[i] - '0') < 10)
#define LOWER(i) ((unsigned)(s[i] - 'a') < 26)
    Py_ssize_t i = 0, n, m;
    if (s[0] == '<') { /* RFC 5424's "<PRI>VERSION " */
        for (n = 0; DIGIT(1 + n); n++) {}
        if (n >= 1 && n <= 3 && s[1 + n] == '>') {
            for (m = 0; DIGIT(2 + n + m); m++) {}
            if (m >= 1 && m <= 2 && s[2 + n + m] == ' ') i = 3 + n + m;
        }
    }
    *stamp = i;
    int iso = 0;
    if ((unsigned)(s[i] - 'A') < 26) { /* "Nov 23 06:50:01", "Nov  2 …", "Nov 2 …" */
        if (!LOWER(i + 1) || !LOWER(i + 2) || s[i + 3] != ' ') return HEAD_NONE;
        if ((s[i + 4] == ' ' || (unsigned)(s[i + 4] - '0') < 4) && DIGIT(i + 5)) i += 6;
        else if (DIGIT(i + 4)) i += 5;
        else return HEAD_NONE;
        if (s[i] != ' ') return HEAD_NONE;
        i++;
    } else if (DIGIT(i)) { /* "2026-11-23T06:50:01" or "2026-11-23 06:50:01" */
        if (!(DIGIT(i + 1) && DIGIT(i + 2) && DIGIT(i + 3) && s[i + 4] == '-' && DIGIT(i + 5) &&
              DIGIT(i + 6) && s[i + 7] == '-' && DIGIT(i + 8) && DIGIT(i + 9) &&
              (s[i + 10] == 'T' || s[i + 10] == ' ')))
            return HEAD_NONE;
        i += 11;
        iso = 1;
    } else {
        return HEAD_NONE;
    }
    if (!(DIGIT(i) && DIGIT(i + 1) && s[i + 2] == ':' && DIGIT(i + 3) && DIGIT(i + 4) &&
          s[i + 5] == ':' && DIGIT(i + 6) && DIGIT(i + 7)))
        return HEAD_NONE;
    i += 8;
    if (s[i] == '.') { /* a fraction of 1 to 9 digits */
        for (n = 0; DIGIT(i + 1 + n); n++) {}
        if (n < 1 || n > 9) return HEAD_NONE;
        i += 1 + n;
    }
    if (iso && s[i] == 'Z') {
        i++;
    } else if (iso && (s[i] == '+' || s[i] == '-')) { /* +hh:mm or +hhmm */
        if (!DIGIT(i + 1) || !DIGIT(i + 2)) return HEAD_NONE;
        n = s[i + 3] == ':' ? i + 4 : i + 3;
        if (!DIGIT(n) || !DIGIT(n + 1)) return HEAD_NONE;
        i = n + 2;
    }
    *stamp_end = i;
    if (s[i] != ' ') return HEAD_NONE;
    i++;
    if (s[i] == '<') return HEAD_UNSURE; /* FreeBSD's "<facility.level> ", or a host "<…>" */
    /* The host: a token without blanks or brackets, not ending in ":", then one blank. */
    for (n = 0; !ENDS_HOST[s[i + n]]; n++) {}
    if (n >= 1 && n <= 255 && s[i + n] == ' ' && s[i + n - 1] != ':') i += n + 1;
    /* busybox's "facility.level ": [a-z]{2,12}[0-7]? then "." (local0 … local7, or a name) */
    for (n = 0; n <= 12 && LOWER(i + n); n++) {}
    if (n >= 2 && n <= 12) {
        Py_ssize_t dot = (unsigned)(s[i + n] - '0') < 8 ? i + n + 1 : i + n;
        if (s[dot] == '.' && (dot == i + n ? one_of(FACILITIES, text + i, n)
                                           : n == 5 && memcmp(s + i, "local", 5) == 0)) {
            for (m = 0; LOWER(dot + 1 + m); m++) {}
            if (s[dot + 1 + m] == ' ' && one_of(LEVELS, text + dot + 1, m)) i = dot + 2 + m;
        }
    }
    *after = i;
    return HEAD_OK;
#undef DIGIT
#undef LOWER
}

/* The next match at or after `origin` of a pattern with a syslog body: what searching its
 * one part would find (the line's "\n" at ovector[0], the stamp as group 1), each line's
 * head read by syslog_head and the body matched anchored after it. On a PCRE2 error,
 * *failed is the line it happened on. */
static int search_syslog(const PatternObject *pattern, const char *text, PCRE2_SIZE size,
                         PCRE2_SIZE origin, pcre2_match_data *match, PCRE2_SIZE *failed) {
    const char *end = text + size;
    const char *line = origin < size ? memchr(text + origin, '\n', size - origin) : NULL;
    while (line) {
        const char *s = line + 1;
        const char *eol = s < end ? memchr(s, '\n', end - s) : NULL;
        Py_ssize_t stamp = 0, stamp_end = 0, after = 0;
        /* A last line without its "\n" (the expression's "$" also ends there): unsure. */
        int head = eol ? syslog_head(s, eol - s, &stamp, &stamp_end, &after)
                       : s < end ? HEAD_UNSURE : HEAD_NONE;
        *failed = line - text;
        if (head == HEAD_UNSURE) /* the whole expression, from this line on */
            return pattern->jit[0] ? pcre2_jit_match(pattern->codes[0], (PCRE2_SPTR)text, size,
                                                     line - text, 0, match, NULL)
                                   : pcre2_match(pattern->codes[0], (PCRE2_SPTR)text, size,
                                                 line - text, 0, match, NULL);
        if (head == HEAD_OK) {
            PCRE2_SIZE from = s + after - text;
            int found = pattern->body_jit ? pcre2_jit_match(pattern->body, (PCRE2_SPTR)text, size,
                                                            from, 0, match, NULL)
                                          : pcre2_match(pattern->body, (PCRE2_SPTR)text, size,
                                                        from, 0, match, NULL);
            if (found > 0) {
                PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
                ovector[0] = line - text;
                ovector[2] = s + stamp - text;
                ovector[3] = s + stamp_end - text;
            }
            if (found != PCRE2_ERROR_NOMATCH) return found;
        }
        line = eol;
    }
    return PCRE2_ERROR_NOMATCH;
}

static PyObject *run(StreamObject *self, PyObject *chunk_object, enum Sink sink, int keep_lines,
                     PyObject *series, int users) {
    Py_buffer chunk;
    if (PyObject_GetBuffer(chunk_object, &chunk, PyBUF_SIMPLE) < 0) return NULL;
    /* A leading "\n" lets the expression start every line with a literal. */
    if (self->text_capacity < chunk.len + 1) {
        PyMem_Free(self->text);
        self->text = PyMem_Malloc(chunk.len + 1);
        self->text_capacity = self->text ? chunk.len + 1 : 0;
        if (!self->text) {
            PyBuffer_Release(&chunk);
            return PyErr_NoMemory();
        }
    }
    char *text = self->text;
    text[0] = '\n';
    memcpy(text + 1, chunk.buf, chunk.len);
    Py_ssize_t size = chunk.len + 1;
    if (memchr(text + 1, '\r', chunk.len)) size = strip_crlf(text, size);
    for (const char *p = chunk.buf, *end = p + chunk.len; (p = memchr(p, '\n', end - p)); p++)
        self->lines++;
    PyBuffer_Release(&chunk);

    if (self->live) {
        long today = (long)(time(NULL) / 86400);
        if (today != self->hours_day) { /* a live log's syslog year can move on */
            clear_hours(self);
            self->hours_day = today;
        }
    }
    self->remember = sink == SINK_HITS;
    PyObject *hits = sink == SINK_HITS ? PyList_New(0) : NULL;
    if (sink == SINK_HITS && !hits) goto error;
    const PatternObject *pattern = self->pattern;
    /* Each part's next match at or after `start` (its state: to search, found, none left);
     * the earliest is taken (the first part on a tie, as one alternation would), and a
     * part's match inside a line already taken is searched again past it. */
    enum { PART_SEARCH, PART_FOUND, PART_DONE } state[MAX_PARTS];
    PCRE2_SIZE from[MAX_PARTS];
    for (int k = 0; k < pattern->nparts; k++) {
        state[k] = PART_SEARCH;
        from[k] = 0;
    }
    PCRE2_SIZE start = 0;
    for (;;) {
        int best = -1;
        for (int k = 0; k < pattern->nparts; k++) {
            PCRE2_SIZE *at = pcre2_get_ovector_pointer(self->match[k]);
            if (state[k] == PART_FOUND && at[0] < start) state[k] = PART_SEARCH;
            while (state[k] == PART_SEARCH) {
                PCRE2_SIZE origin = from[k] > start ? from[k] : start;
                int found =
                    pattern->body
                        ? search_syslog(pattern, text, size, origin, self->match[k], &origin)
                    : pattern->jit[k] ? pcre2_jit_match(pattern->codes[k], (PCRE2_SPTR)text,
                                                        size, origin, 0, self->match[k], NULL)
                                      : pcre2_match(pattern->codes[k], (PCRE2_SPTR)text, size,
                                                    origin, 0, self->match[k], NULL);
                if (found == PCRE2_ERROR_NOMATCH) {
                    state[k] = PART_DONE;
                } else if (found < 0) { /* e.g. the match limit, on hostile text: skip a line */
                    self->match_errors++;
                    const char *next =
                        origin + 1 < (PCRE2_SIZE)size
                            ? memchr(text + origin + 1, '\n', size - origin - 1)
                            : NULL;
                    if (next) from[k] = next - text;
                    else state[k] = PART_DONE;
                } else {
                    state[k] = PART_FOUND;
                }
            }
            if (state[k] == PART_FOUND &&
                (best < 0 || at[0] < pcre2_get_ovector_pointer(self->match[best])[0]))
                best = k;
        }
        if (best < 0) break;
        state[best] = PART_SEARCH;
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(self->match[best]);
        /* The match ends before the line's "\n"; the next line starts there. */
        start = ovector[1] > ovector[0] ? ovector[1] : ovector[0] + 1;
        self->matched++;
        const Check *check = check_of(self, self->match[best]);
        if (!check || (check->host && (ovector[2 * check->host] == PCRE2_UNSET ||
                                       ovector[2 * check->host + 1] <= ovector[2 * check->host])))
            continue;
        double moment;
        int timed =
            stamp_time(self, check->stamp_kind, text + ovector[2], ovector[3] - ovector[2], &moment);
        if (timed < 0) goto error;
        if (timed == 0) {
            self->bad_time++;
            continue;
        }
        if (!check->host && !check->keyed) { /* names no client: the identity stage decides */
            remember_match(self, check, text, ovector, moment, text, 0);
            long count = group_number(text, ovector, check->repeat) *
                         group_number(text, ovector, check->count);
            if (count > MAX_REPEAT) count = MAX_REPEAT;
            if (sink == SINK_NONE) continue;
            self->unattributed += count;
            if (sink == SINK_HITS && add_named(self, check, text, ovector, moment, count) < 0)
                goto error;
            continue;
        }
        uint64_t pid = 0;
        if (check->keyed >= KEY_PID_OPENED &&
            (!check->pid || ovector[2 * check->pid] == PCRE2_UNSET)) {
            remember_match(self, check, text, ovector, moment, text, 0);
            continue; /* a line without a pid can't be tied to its connection */
        }
        if (check->pid) {
            PCRE2_SIZE i = ovector[2 * check->pid], end = ovector[2 * check->pid + 1];
            if (check->keyed == KEY_SESSION) /* hexadecimal (at most 16 digits) */
                for (; i < end; i++)
                    pid = pid << 4 | (uint64_t)(text[i] <= '9' ? text[i] - '0'
                                                               : (text[i] | 0x20) - 'a' + 10);
            else
                for (; i < end; i++) pid = pid * 10 + (uint64_t)(text[i] - '0');
        }
        pid = pid ? pid : 1ULL << 63;
        Connection *state = table_find(&self->connections, pid);
        int open = state->pid && moment - state->last <= CONNECTION_IDLE;
        const char *host;
        Py_ssize_t host_len;
        char session_host[HOST_INLINE];
        if (check->host) {
            host = text + ovector[2 * check->host];
            host_len = ovector[2 * check->host + 1] - ovector[2 * check->host];
        } else {
            /* A session's later line: the address its OPEN line named (a name or an unseen
             * opening leaves nobody to count it for). A pid's: only an address its OPEN line
             * named (a pid's older address may be another connection's, the pid reused);
             * without one, the line waits for the pid's next line with an address. */
            int usable = open && state->host_len && state->host_len <= HOST_INLINE &&
                         (check->keyed == KEY_SESSION || state->opened);
            if (!usable) {
                remember_match(self, check, text, ovector, moment, text, 0);
                if (check->keyed == KEY_PID_OPENED && check->role == ROLE_CLOSE &&
                    !(open && state->host_len)) {
                    state = table_claim(&self->connections, state, pid, moment);
                    if (!state) {
                        PyErr_NoMemory();
                        goto error;
                    }
                    state->host_len = 0;
                    state->announced = state->counted = state->named = state->opened = 0;
                    state->owed = 1;
                    state->last = moment;
                }
                continue;
            }
            host_len = state->host_len;
            memcpy(session_host, state->host, host_len);
            host = session_host;
        }
        /* `bruteguard test` shows what a line counts for: a pid's first line ("Connection
         * from") and a close no line waited for count nothing, and are no failures. */
        int shown = check->keyed == KEY_PID_SETTLES
                        ? open && state->owed && !state->host_len
                        : !(check->role == ROLE_OPEN && check->keyed == KEY_PID_OPENED);
        if (shown) remember_match(self, check, text, ovector, moment, host, host_len);
        uint64_t host_hash = host_len > HOST_INLINE ? hash_bytes(self->seed, host, host_len) : 0;
        if (check->role == ROLE_OPEN) {
            /* A connection's own later opening line (a patched sshd's session log writes
             * one per phase) keeps what the connection counted. */
            if (!(open && state->opened && same_host(state, host, host_len, host_hash))) {
                state = table_claim(&self->connections, state, pid, moment);
                if (!state) {
                    PyErr_NoMemory();
                    goto error;
                }
                set_host(state, host, host_len, host_hash);
                state->announced = state->counted = state->named = state->owed = 0;
                state->opened = 1;
            }
            state->last = moment;
            continue;
        }
        if (check->keyed == KEY_PID_SETTLES) {
            /* Counts only for the line before it that named no client and waited. */
            if (!(open && state->owed && !state->host_len)) continue;
            set_host(state, host, host_len, host_hash);
            state->owed = 0; /* and counts as a close of the connection, below */
        }
        if (check->waits || (check->role == ROLE_ANNOUNCE && sink != SINK_NONE)) {
            PyObject *address = address_for(self, host, host_len);
            if (!address) goto error;
            if (check->waits || address == Py_None) {
                /* The attempt's verdict comes next and counts; this line counts nothing:
                 * pam's rhost= with a name (sshd's UseDNS: the verdict carries the
                 * address), or a refusal that may yet be overturned (pam_unix before
                 * pam_sss or pam_ldap, a valid user's agent offering its keys in turn). */
                int named = address == Py_None;
                if (!open) {
                    state = table_claim(&self->connections, state, pid, moment);
                    if (!state) {
                        PyErr_NoMemory();
                        goto error;
                    }
                    set_host(state, host, host_len, host_hash);
                    state->announced = state->counted = state->opened = state->owed = 0;
                    state->named = named;
                } else if (named) {
                    state->named = 1;
                } else if (state->named) { /* the named connection, now with its address */
                    set_host(state, host, host_len, host_hash);
                    state->named = 0;
                } else if (!same_host(state, host, host_len, host_hash)) {
                    set_host(state, host, host_len, host_hash); /* the pid reused */
                    state->announced = state->counted = state->opened = state->owed = 0;
                }
                state->last = moment;
                continue;
            }
        }
        int same = open && same_host(state, host, host_len, host_hash);
        int known = same || (open && state->named && check->role != ROLE_ANNOUNCE);
        if (known && !same) { /* the named connection's verdict or close, with its address */
            set_host(state, host, host_len, host_hash);
            state->named = 0;
        }
        if (check->role == ROLE_CLOSE && known && state->counted)
            continue; /* the commonest line: a connection that already counted ends */
        long count = group_number(text, ovector, check->repeat) *
                     group_number(text, ovector, check->count);
        if (count > MAX_REPEAT) count = MAX_REPEAT;
        if (!known) {
            state = table_claim(&self->connections, state, pid, moment);
            if (!state) {
                PyErr_NoMemory();
                goto error;
            }
            set_host(state, host, host_len, host_hash);
            state->announced = state->counted = state->named = 0;
            state->opened = state->owed = 0;
        }
        state->last = moment;
        if (check->role == ROLE_CONFIRM) {
            if (state->announced) { /* the announced attempt's verdict: already counted */
                state->announced = 0;
                if (!--count) continue;
            }
        } else if (check->role == ROLE_ANNOUNCE) {
            if (state->announced) continue;
            state->announced = 1;
        } else if (state->counted) {
            continue;
        } else {
            count = 1;
        }
        state->counted = 1;
        if (sink == SINK_NONE) continue;
        count *= check->weight;
        /* Live, a service that logs PTR text has its host checked against real connections
         * by the identity stage even when it reads as an address (a PTR may say 192.0.2.11). */
        PyObject *address =
            check->ptr_host && self->live ? Py_None : address_for(self, host, host_len);
        if (!address) goto error;
        if (address == Py_None) {
            self->unattributed += count;
            if (sink == SINK_HITS && add_named(self, check, text, ovector, moment, count) < 0)
                goto error;
            continue;
        }
        self->attempts += count; /* once per line, whatever number of jails it counts for */
        const char *user = NULL;
        Py_ssize_t user_len = ovector[2 * check->user + 1] - ovector[2 * check->user];
        if (check->user && ovector[2 * check->user] != PCRE2_UNSET && user_len > 0 && users)
            user = text + ovector[2 * check->user];
        if (sink == SINK_SERIES) {
            /* Users tried go to the first jail only: they feed the report, which shows each
             * attempt once. The series' last dict counts what the other jails share. */
            for (Py_ssize_t j = 0; j < check->njails; j++) {
                if (add_to_series(series, check->jails[j], address, moment, count,
                                  j ? NULL : user, user_len) < 0)
                    goto error;
            }
            if (check->njails > 1 &&
                add_shared(series, address, count * (check->njails - 1)) < 0)
                goto error;
            continue;
        }
        PyObject *user_text =
            user ? PyUnicode_DecodeUTF8(user, user_len, "backslashreplace") : Py_NewRef(Py_None);
        PyObject *line = keep_lines ? PyUnicode_DecodeUTF8(text + ovector[0] + 1,
                                                           ovector[1] - ovector[0] - 1,
                                                           "backslashreplace")
                                    : PyUnicode_FromStringAndSize("", 0);
        PyObject *when = PyFloat_FromDouble(moment);
        int failed = !user_text || !line || !when;
        for (Py_ssize_t j = 0; !failed && j < check->njails; j++) {
            PyObject *jail = PyTuple_GET_ITEM(self->jail_names, check->jails[j]);
            PyObject *hit = PyTuple_Pack(5, when, address, user_text, jail, line);
            for (long k = 0; hit && !failed && k < count; k++) failed = PyList_Append(hits, hit) < 0;
            failed = failed || !hit;
            Py_XDECREF(hit);
        }
        Py_XDECREF(user_text);
        Py_XDECREF(line);
        Py_XDECREF(when);
        if (failed) goto error;
    }
    if (sink == SINK_HITS) return hits;
    Py_RETURN_NONE;
error:
    Py_XDECREF(hits);
    return NULL;
}

static PyObject *Stream_feed(StreamObject *self, PyObject *args) {
    PyObject *chunk;
    int keep_lines = 0;
    if (!PyArg_ParseTuple(args, "O|p", &chunk, &keep_lines)) return NULL;
    self->has_last_match = 0; /* last_match() tells of this chunk's lines only */
    return run(self, chunk, SINK_HITS, keep_lines, NULL, 1);
}

static PyObject *Stream_collect(StreamObject *self, PyObject *args) {
    PyObject *chunk, *series;
    int users = 1;
    if (!PyArg_ParseTuple(args, "OO!|p", &chunk, &PyList_Type, &series, &users)) return NULL;
    if (PyList_GET_SIZE(series) != PyTuple_GET_SIZE(self->jail_names) + 1) {
        PyErr_SetString(PyExc_ValueError, "series needs one dict per jail, and one shared");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(series); i++) {
        if (!PyDict_Check(PyList_GET_ITEM(series, i))) {
            PyErr_SetString(PyExc_TypeError, "series needs one dict per jail");
            return NULL;
        }
    }
    return run(self, chunk, SINK_SERIES, 0, series, users);
}

static PyObject *Stream_skim(StreamObject *self, PyObject *chunk) {
    return run(self, chunk, SINK_NONE, 0, NULL, 0);
}

static PyObject *Stream_take_named(StreamObject *self, PyObject *unused) {
    PyObject *fresh = PyList_New(0);
    if (!fresh) return NULL;
    PyObject *named = self->named;
    self->named = fresh;
    return named;
}

static PyObject *Stream_last_match(StreamObject *self, PyObject *unused) {
    if (!self->has_last_match) Py_RETURN_NONE;
    PyObject *user;
    if (self->last_match_user_len < 0) {
        user = Py_NewRef(Py_None);
    } else {
        user = PyBytes_FromStringAndSize(self->last_match_user, self->last_match_user_len);
        if (!user) return NULL;
    }
    return Py_BuildValue("(dy#N)", self->last_match_moment, self->last_match_host,
                         self->last_match_host_len, user);
}

static PyObject *Stream_take_counts(StreamObject *self, PyObject *unused) {
    PyObject *counts = Py_BuildValue("(LLLLLL)", self->lines, self->matched, self->attempts,
                                     self->unattributed, self->bad_time, self->match_errors);
    self->lines = self->matched = self->attempts = self->unattributed = self->bad_time = 0;
    self->match_errors = 0;
    return counts;
}

static PyMethodDef Stream_methods[] = {
    {"feed", (PyCFunction)Stream_feed, METH_VARARGS,
     "feed(chunk, keep_lines=False) -> hits (time, address, user, jail, line) of whole lines"},
    {"collect", (PyCFunction)Stream_collect, METH_VARARGS,
     "collect(chunk, series, users=True): add attempts to series[jail][address] ="
     " [packed times, {raw user: count}]; series[-1][address]: attempts shared by jails"},
    {"skim", (PyCFunction)Stream_skim, METH_O, "skim(chunk): update connection state only"},
    {"take_named", (PyCFunction)Stream_take_named, METH_NOARGS,
     "attempts naming a host (time, name, user, jail, line) since the last call (feed only)"},
    {"last_match", (PyCFunction)Stream_last_match, METH_NOARGS,
     "(time, host bytes, user bytes | None) of the last matched line, or None"},
    {"take_counts", (PyCFunction)Stream_take_counts, METH_NOARGS,
     "(lines, matched, attempts, unattributed, bad_time, match_errors) since the last call"},
    {NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bruteguard.match._core.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The matching state of one log (see engine.Stream).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Stream_init,
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_methods = Stream_methods,
};

/* ---------------------------------------------------------------- span */

/* (count, earliest, latest) of packed doubles: an offender's summary without a Python
 * float per attempt. */
static PyObject *span(PyObject *module, PyObject *arg) {
    Py_buffer packed;
    if (PyObject_GetBuffer(arg, &packed, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t count = packed.len / (Py_ssize_t)sizeof(double);
    if (count == 0 || packed.len % (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&packed);
        PyErr_SetString(PyExc_ValueError, "span needs one or more whole doubles");
        return NULL;
    }
    const double *times = packed.buf;
    double first = times[0], last = times[0];
    for (Py_ssize_t i = 1; i < count; i++) {
        if (times[i] < first) first = times[i];
        if (times[i] > last) last = times[i];
    }
    PyBuffer_Release(&packed);
    return Py_BuildValue("(ndd)", count, first, last);
}

static PyMethodDef core_functions[] = {
    {"span", span, METH_O, "span(packed_times) -> (count, earliest, latest)"},
    {"compiles", core_compiles, METH_O,
     "compiles(expression) -> whether it compiles within PCRE2's limits"},
    {NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_core",
    .m_doc = "The compiled matching pass of bruteguard.",
    .m_size = -1,
    .m_methods = core_functions,
};

PyMODINIT_FUNC PyInit__core(void) {
    init_syslog_tables();
    if (PyType_Ready(&PatternType) < 0 || PyType_Ready(&StreamType) < 0) return NULL;
    PyObject *module = PyModule_Create(&core_module);
    if (!module) return NULL;
    if (PyModule_AddObjectRef(module, "Pattern", (PyObject *)&PatternType) < 0 ||
        PyModule_AddObjectRef(module, "Stream", (PyObject *)&StreamType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
