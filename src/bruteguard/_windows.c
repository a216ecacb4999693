/*
 * bruteguard._windows — a replay's ban decisions for a whole jail at once.
 *
 * A replay hands detect.Detector.observe_jail one series per jail: address → [attempt times
 * as packed doubles, users]. A year of logs has tens of thousands of addresses, and deciding
 * them one Python call each cost as much as matching their lines. Here one call decides every
 * address that is new to the jail and whose times are in order — what detect._step would
 * decide for those times one by one — and hands the others back to Python:
 *
 *   decide(series, rule, state, screen) → (bans, ignored, deferred)
 *   merge(parts) → packed times of an IPv6 prefix's addresses, in time order
 *   in_networks(address, networks_v4, networks_v6) → bool
 *
 * Networks are packed (network, mask) byte pairs: 4 + 4 bytes each for IPv4, 16 + 16 for
 * IPv6 (detect.IgnoreList packs them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <math.h>
#include <string.h>

/* Longest address text inet_pton reads (an IPv6 address with an IPv4 tail). */
#define ADDRESS_TEXT_MAX 45

typedef struct {
    Py_ssize_t maxretry;
    double findtime, bantime, factor, maxtime;
    Py_ssize_t keep; /* attempt times kept per target after its last ban */
} Rule;

typedef struct {
    PyObject *own; /* set of this host's addresses (text) */
    Py_buffer v4, v6;
    int group_v6; /* IPv6 addresses are decided per prefix: hand them back */
} Screen;

static int inside(const unsigned char *raw, Py_ssize_t width, const Py_buffer *networks) {
    const unsigned char *entry = networks->buf;
    for (Py_ssize_t n = networks->len / (2 * width); n > 0; n--, entry += 2 * width) {
        Py_ssize_t i = 0;
        while (i < width && (raw[i] & entry[width + i]) == entry[i]) i++;
        if (i == width) return 1;
    }
    return 0;
}

/* 1 if `text` is an address inside one of the networks, 0 if outside, -1 if it is not an
 * address (a ValueError is set). `is_v6` tells the family. */
static int in_packed(PyObject *text_object, const Py_buffer *v4, const Py_buffer *v6, int *is_v6) {
    Py_ssize_t len;
    const char *text = PyUnicode_Check(text_object) ? PyUnicode_AsUTF8AndSize(text_object, &len)
                                                    : NULL;
    unsigned char raw[16];
    if (text && len <= ADDRESS_TEXT_MAX && strlen(text) == (size_t)len) {
        *is_v6 = memchr(text, ':', len) != NULL;
        if (inet_pton(*is_v6 ? AF_INET6 : AF_INET, text, raw) == 1)
            return inside(raw, *is_v6 ? 16 : 4, *is_v6 ? v6 : v4);
    }
    if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "not an IP address: %R", text_object);
    return -1;
}

static int check_widths(const Py_buffer *v4, const Py_buffer *v6) {
    if (v4->len % 8 || v6->len % 32) {
        PyErr_SetString(PyExc_ValueError, "networks are packed (network, mask) pairs");
        return -1;
    }
    return 0;
}

static PyObject *in_networks(PyObject *module, PyObject *args) {
    PyObject *address;
    Py_buffer v4, v6;
    if (!PyArg_ParseTuple(args, "Uy*y*", &address, &v4, &v6)) return NULL;
    int is_v6 = 0;
    int found = check_widths(&v4, &v6) < 0 ? -1 : in_packed(address, &v4, &v6, &is_v6);
    PyBuffer_Release(&v4);
    PyBuffer_Release(&v6);
    return found < 0 ? NULL : PyBool_FromLong(found);
}

static int append_new(PyObject *list, PyObject *item) {
    if (!item) return -1;
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* The bans of one target's times (in order, new to the jail), appended to `bans` as
 * (target, first, last, until, step); the target's state is left as detect._step leaves it:
 * its ban count in `counts`, and either its times since the last ban (at most rule.keep) in
 * `times` or, when none came after, the end of its last ban in `banned`. */
static int decide_target(PyObject *target, const double *t, Py_ssize_t end, const Rule *rule,
                         PyObject *counts, PyObject *times, PyObject *banned, PyObject *bans) {
    PyObject *known = PyDict_GetItemWithError(counts, target);
    if (!known && PyErr_Occurred()) return -1;
    Py_ssize_t prior = known ? PyLong_AsSsize_t(known) : 0;
    if (prior == -1 && PyErr_Occurred()) return -1;
    Py_ssize_t step = prior, start = 0;
    double until = 0.0;
    for (Py_ssize_t at = rule->maxretry - 1; at < end;) {
        double first = t[at - rule->maxretry + 1];
        if (t[at] - first > rule->findtime) {
            at++;
            continue;
        }
        step++;
        /* The n-th ban lasts bantime * factor^(n-1), at most maxtime (detect._duration). */
        double length = rule->bantime * pow(rule->factor, (double)(step - 1));
        until = t[at] + (length < rule->maxtime ? length : rule->maxtime);
        if (append_new(bans, Py_BuildValue("(Odddn)", target, first, t[at], until, step)) < 0)
            return -1;
        start = at + 1;
        while (start < end && t[start] < until) start++; /* banned: its last lines still come */
        at = start + rule->maxretry - 1;
    }
    if (step > prior) {
        PyObject *count = PyLong_FromSsize_t(step);
        if (!count || PyDict_SetItem(counts, target, count) < 0) {
            Py_XDECREF(count);
            return -1;
        }
        Py_DECREF(count);
    }
    if (start < end) {
        Py_ssize_t from = end - rule->keep > start ? end - rule->keep : start;
        PyObject *rest = PyList_New(end - from);
        if (!rest) return -1;
        for (Py_ssize_t i = from; i < end; i++) {
            PyObject *moment = PyFloat_FromDouble(t[i]);
            if (!moment) {
                Py_DECREF(rest);
                return -1;
            }
            PyList_SET_ITEM(rest, i - from, moment);
        }
        int failed = PyDict_SetItem(times, target, rest);
        Py_DECREF(rest);
        return failed;
    }
    if (step == prior) return 0;
    PyObject *last = PyFloat_FromDouble(until);
    int failed = !last || PyDict_SetItem(banned, target, last) < 0;
    Py_XDECREF(last);
    return failed ? -1 : 0;
}

static int in_order(const double *t, Py_ssize_t end) {
    for (Py_ssize_t i = 1; i < end; i++)
        if (t[i] < t[i - 1]) return 0;
    return 1;
}

/* What to do with one series entry: 0 decided (or nothing to decide), 1 hand back, -1 error. */
static int decide_entry(PyObject *target, PyObject *packed_object, const Rule *rule,
                        PyObject *state[3], const Screen *screen, Py_ssize_t *ignored,
                        PyObject *bans) {
    Py_buffer packed;
    if (PyObject_GetBuffer(packed_object, &packed, PyBUF_SIMPLE) < 0) return -1;
    int outcome = -1;
    Py_ssize_t count = packed.len / (Py_ssize_t)sizeof(double);
    if (packed.len % (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "attempt times are whole packed doubles");
        goto done;
    }
    if (screen) {
        int own = PySet_Contains(screen->own, target), is_v6 = 0;
        int inside_networks = own ? own : in_packed(target, &screen->v4, &screen->v6, &is_v6);
        if (inside_networks < 0) goto done;
        if (inside_networks) {
            *ignored += count;
            outcome = 0;
            goto done;
        }
        if (is_v6 && screen->group_v6) {
            outcome = 1;
            goto done;
        }
    }
    int busy = PyDict_Contains(state[1], target);
    if (!busy) busy = PyDict_Contains(state[2], target);
    if (busy < 0) goto done;
    if (busy || !in_order(packed.buf, count)) {
        outcome = 1;
        goto done;
    }
    outcome = decide_target(target, packed.buf, count, rule, state[0], state[1], state[2], bans);
done:
    PyBuffer_Release(&packed);
    return outcome;
}

static PyObject *decide(PyObject *module, PyObject *args) {
    PyObject *series, *screen_object, *state[3];
    Rule rule;
    Screen screen = {0};
    if (!PyArg_ParseTuple(args, "O!(nddddn)(O!O!O!)O", &PyDict_Type, &series, &rule.maxretry,
                          &rule.findtime, &rule.bantime, &rule.factor, &rule.maxtime, &rule.keep,
                          &PyDict_Type, &state[0], &PyDict_Type, &state[1], &PyDict_Type,
                          &state[2], &screen_object))
        return NULL;
    if (rule.maxretry < 1 || rule.keep < 0) {
        PyErr_SetString(PyExc_ValueError, "maxretry >= 1 and keep >= 0 needed");
        return NULL;
    }
    int screened = screen_object != Py_None;
    if (screened) {
        if (!PyArg_ParseTuple(screen_object, "Oy*y*p", &screen.own, &screen.v4, &screen.v6,
                              &screen.group_v6))
            return NULL;
        if (check_widths(&screen.v4, &screen.v6) < 0 || !PyAnySet_Check(screen.own)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "own addresses: a set");
            PyBuffer_Release(&screen.v4);
            PyBuffer_Release(&screen.v6);
            return NULL;
        }
    }
    PyObject *bans = PyList_New(0), *deferred = PyList_New(0), *result = NULL;
    Py_ssize_t ignored = 0, position = 0;
    PyObject *target, *entry;
    if (!bans || !deferred) goto done;
    /* `series` is never changed here: its borrowed items stay valid. */
    while (PyDict_Next(series, &position, &target, &entry)) {
        if (!PyList_Check(entry) || PyList_GET_SIZE(entry) < 1) {
            PyErr_SetString(PyExc_TypeError, "series entries are [packed times, ...] lists");
            goto done;
        }
        PyObject *packed = PyList_GET_ITEM(entry, 0);
        int outcome = decide_entry(target, packed, &rule, state, screened ? &screen : NULL,
                                   &ignored, bans);
        if (outcome < 0) goto done;
        if (outcome == 1 && append_new(deferred, Py_BuildValue("(OO)", target, packed)) < 0)
            goto done;
    }
    result = Py_BuildValue("(OnO)", bans, ignored, deferred);
done:
    Py_XDECREF(bans);
    Py_XDECREF(deferred);
    if (screened) {
        PyBuffer_Release(&screen.v4);
        PyBuffer_Release(&screen.v6);
    }
    return result;
}

/* A heap entry of merge(): the next time of one part. Ties go to the earlier part. */
typedef struct {
    double moment;
    Py_ssize_t part, at;
} Head;

static int head_before(const Head *a, const Head *b) {
    return a->moment < b->moment || (a->moment == b->moment && a->part < b->part);
}

static void sift_down(Head *heap, Py_ssize_t size, Py_ssize_t i) {
    for (;;) {
        Py_ssize_t least = i, left = 2 * i + 1, right = left + 1;
        if (left < size && head_before(&heap[left], &heap[least])) least = left;
        if (right < size && head_before(&heap[right], &heap[least])) least = right;
        if (least == i) return;
        Head swap = heap[i];
        heap[i] = heap[least];
        heap[least] = swap;
        i = least;
    }
}

/* merge(parts) -> bytes: packed times of several series merged in time order as
 * heapq.merge merges them (each part's own order kept, ties to the earlier part). */
static PyObject *merge(PyObject *module, PyObject *parts_object) {
    PyObject *parts = PySequence_Fast(parts_object, "merge() takes a sequence of packed times");
    if (!parts) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(parts), total = 0, filled = 0, size = 0;
    Py_buffer *views = PyMem_Calloc(count ? count : 1, sizeof(Py_buffer));
    Head *heap = PyMem_Calloc(count ? count : 1, sizeof(Head));
    PyObject *result = NULL;
    if (!views || !heap) {
        PyErr_NoMemory();
        goto done;
    }
    for (; filled < count; filled++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(parts, filled), &views[filled],
                               PyBUF_SIMPLE) < 0)
            goto done;
        if (views[filled].len % (Py_ssize_t)sizeof(double)) {
            PyBuffer_Release(&views[filled]);
            PyErr_SetString(PyExc_ValueError, "attempt times are whole packed doubles");
            goto done;
        }
        total += views[filled].len / (Py_ssize_t)sizeof(double);
    }
    result = PyBytes_FromStringAndSize(NULL, total * (Py_ssize_t)sizeof(double));
    if (!result) goto done;
    double *out = (double *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++)
        if (views[i].len) heap[size++] = (Head){((const double *)views[i].buf)[0], i, 0};
    for (Py_ssize_t i = size / 2 - 1; i >= 0; i--) sift_down(heap, size, i);
    while (size) {
        Head *top = &heap[0];
        *out++ = top->moment;
        const Py_buffer *view = &views[top->part];
        if (++top->at < view->len / (Py_ssize_t)sizeof(double))
            top->moment = ((const double *)view->buf)[top->at];
        else
            heap[0] = heap[--size];
        sift_down(heap, size, 0);
    }
done:
    for (Py_ssize_t i = 0; i < filled; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(heap);
    Py_DECREF(parts);
    return result;
}

static PyMethodDef windows_functions[] = {
    {"decide", decide, METH_VARARGS,
     "decide(series, (maxretry, findtime, bantime, factor, maxtime, keep), (counts, times, "
     "banned_until), screen) -> ([(target, first, last, until, step)], ignored, "
     "[(target, packed)])"},
    {"merge", merge, METH_O,
     "merge(parts) -> bytes: packed times merged in time order (each part's order kept)"},
    {"in_networks", in_networks, METH_VARARGS,
     "in_networks(address, packed_v4, packed_v6) -> bool"},
    {NULL},
};

static struct PyModuleDef windows_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_windows",
    .m_doc = "A replay's ban decisions for a whole jail at once.",
    .m_size = -1,
    .m_methods = windows_functions,
};

PyMODINIT_FUNC PyInit__windows(void) { return PyModule_Create(&windows_module); }
