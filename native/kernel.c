// The kernel interfaces that Node.js and the npm `netlink` binding cannot provide to the
// components, as one small N-API addon (built by native/build.ts):
//
// 1. sendFrames: raw Ethernet frames out of an interface through an AF_PACKET socket,
//    for gratuitous ARP and unsolicited Neighbor Advertisements, which must leave with
//    a chosen source MAC and IP. The frames are built in TypeScript
//    (src/lbnodeagent/announce/frames.ts).
//
// 2. openRtnetlinkListener: an rtnetlink notification socket that survives overruns.
//    When a netlink socket's buffer overflows the kernel flags ENOBUFS, epoll reports
//    POLLERR, and the npm binding then aborts the whole process (its error path builds a
//    string from a NULL pointer). Here an overrun is reported to JavaScript as what it
//    is, "notifications were lost, re-read the state", and listening goes on.
//
// 3. releasePages: the process's own memory that it holds but no longer uses, given
//    back to the kernel (src/memory.ts decides which and when): madvise(MADV_DONTNEED)
//    on read-only file mappings (the node binary's code and data, mostly touched only
//    while starting), and malloc_trim for the C heap's free pages.
//
// Only N-API calls and libuv (which Node.js exports to addons) are used, so one build
// works on every Node.js version with the same libuv major version.

#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAMES 1024
#define MAX_GROUPS 32
// Datagrams read per wake-up before yielding to the rest of the event loop.
#define READS_PER_WAKEUP 256

// The error carries errno and syscall; the TypeScript side names the code
// (util.getSystemErrorName), which keeps this file free of libc extensions.
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value msg, error, errno_value, syscall_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// The length of a JavaScript array of at most `max` elements; false for anything else.
static bool array_length(napi_env env, napi_value value, uint32_t max, uint32_t *length) {
  bool is_array;
  return napi_is_array(env, value, &is_array) == napi_ok && is_array &&
         napi_get_array_length(env, value, length) == napi_ok && *length <= max;
}

// ---- 1. raw frames ----------------------------------------------------------------

// One packet socket for the whole process, opened on first use and never bound: each
// frame names its interface in sendto(). Opening and closing a socket per
// announcement would cost ~10 ms each, because closing a packet socket waits for an
// RCU grace period (packet_release -> synchronize_net) on the event loop's thread.
// Protocol 0 means the socket receives nothing.
static int packet_fd = -1;

// sendFrames(ifindex: number, frames: Buffer[]): number
// Sends each frame as given (it must start with the Ethernet header) out of the
// interface and returns how many were sent.
static napi_value send_frames(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2)
    return throw_type(env, "sendFrames(ifindex, frames) takes two arguments");

  int32_t ifindex;
  if (napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0)
    return throw_type(env, "ifindex must be a positive integer");

  uint32_t count;
  if (!array_length(env, argv[1], MAX_FRAMES, &count))
    return throw_type(env, "frames must be an array of at most 1024 Buffers");

  if (packet_fd < 0) {
    packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (packet_fd < 0) return throw_errno(env, "socket", errno);
  }

  uint32_t sent = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    bool is_buffer;
    unsigned char *data;
    size_t length;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok ||
        napi_is_buffer(env, element, &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, element, (void **)&data, &length) != napi_ok)
      return throw_type(env, "every frame must be a Buffer");
    if (length < ETH_HLEN) return throw_type(env, "a frame is shorter than an Ethernet header");

    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    memcpy(&to.sll_protocol, data + 12, 2); // the frame's EtherType, network order
    to.sll_halen = ETH_ALEN;
    memcpy(to.sll_addr, data, ETH_ALEN);
    ssize_t n;
    do {
      n = sendto(packet_fd, data, length, 0, (struct sockaddr *)&to, sizeof to);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return throw_errno(env, "sendto", errno);
    sent++;
  }

  napi_value result;
  napi_create_uint32(env, sent, &result);
  return result;
}

// ---- 2. rtnetlink notifications ---------------------------------------------------

typedef struct {
  uv_poll_t poll;
  int fd;
  int closed;        // closeRtnetlinkListener was called
  int handle_closed; // libuv is done with the poll handle
  int finalized;     // the JavaScript handle was garbage-collected
  napi_env env;
  napi_ref on_datagram; // (datagram: Buffer) => void
  napi_ref on_overrun;  // () => void
  napi_async_context async;
} listener_t;

static unsigned char receive_buffer[65536];

static void call_js(listener_t *l, napi_ref ref, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (napi_get_reference_value(l->env, ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(l->env, &recv); // napi_make_callback needs an object as receiver
  if (napi_make_callback(l->env, l->async, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(l->env, &error);
    napi_fatal_exception(l->env, error); // as an uncaught exception in JavaScript
  }
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  listener_t *l = poll->data;
  napi_handle_scope scope;
  napi_open_handle_scope(l->env, &scope);
  if (status < 0) {
    // POLLERR (libuv reports it as a status and stops the handle): the socket holds a
    // pending error, ENOBUFS after an overrun. The next recv returns and clears it.
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
  }
  for (int i = 0; i < READS_PER_WAKEUP && !l->closed; i++) {
    ssize_t n = recv(l->fd, receive_buffer, sizeof receive_buffer, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // ENOBUFS: notifications were dropped. Any other error: same advice, re-read.
      call_js(l, l->on_overrun, 0, NULL);
      continue;
    }
    napi_value datagram;
    void *copy;
    if (napi_create_buffer_copy(l->env, (size_t)n, receive_buffer, &copy, &datagram) != napi_ok) break;
    call_js(l, l->on_datagram, 1, &datagram);
  }
  napi_close_handle_scope(l->env, scope);
}

// Freed only when both libuv and JavaScript are done with it, so a second close on a
// live handle is harmless.
static void maybe_free(listener_t *l) {
  if (l->handle_closed && l->finalized) free(l);
}

static void on_closed(uv_handle_t *handle) {
  listener_t *l = handle->data;
  close(l->fd);
  l->handle_closed = 1;
  maybe_free(l);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  listener_t *l = data;
  l->finalized = 1;
  maybe_free(l);
}

static void close_listener(listener_t *l) {
  if (l->closed) return;
  l->closed = 1;
  uv_poll_stop(&l->poll);
  napi_delete_reference(l->env, l->on_datagram);
  napi_delete_reference(l->env, l->on_overrun);
  napi_async_destroy(l->env, l->async);
  uv_close((uv_handle_t *)&l->poll, on_closed);
}

// openRtnetlinkListener(groups: number[], receiveBufferBytes: number,
//                       onDatagram: (datagram: Buffer) => void, onOverrun: () => void): object
// Joins the RTNLGRP_* groups; each datagram read (one or more netlink messages) goes to
// onDatagram. The returned handle is passed to closeRtnetlinkListener.
static napi_value open_listener(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4)
    return throw_type(env, "openRtnetlinkListener(groups, receiveBufferBytes, onDatagram, onOverrun) takes four arguments");
  uint32_t group_count;
  if (!array_length(env, argv[0], MAX_GROUPS, &group_count))
    return throw_type(env, "groups must be an array of at most 32 RTNLGRP_* numbers");
  int32_t buffer_bytes;
  if (napi_get_value_int32(env, argv[1], &buffer_bytes) != napi_ok || buffer_bytes <= 0)
    return throw_type(env, "receiveBufferBytes must be a positive integer");
  napi_valuetype t2, t3;
  napi_typeof(env, argv[2], &t2);
  napi_typeof(env, argv[3], &t3);
  if (t2 != napi_function || t3 != napi_function) return throw_type(env, "onDatagram and onOverrun must be functions");

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return throw_errno(env, "socket", errno);
  // SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN, which the agent has.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof buffer_bytes) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
  struct sockaddr_nl local;
  memset(&local, 0, sizeof local);
  local.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  for (uint32_t i = 0; i < group_count; i++) {
    napi_value element;
    int32_t group;
    if (napi_get_element(env, argv[0], i, &element) != napi_ok ||
        napi_get_value_int32(env, element, &group) != napi_ok || group <= 0) {
      close(fd);
      return throw_type(env, "groups must be positive integers");
    }
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, "setsockopt(NETLINK_ADD_MEMBERSHIP)", err);
    }
  }

  uv_loop_t *loop;
  listener_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  l->fd = fd;
  l->env = env;
  napi_value resource_name;
  napi_create_string_utf8(env, "purelb:rtnetlink", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &l->poll, fd) != 0) {
    close(fd);
    free(l);
    return throw_type(env, "cannot watch the netlink socket on the event loop");
  }
  l->poll.data = l;
  napi_create_reference(env, argv[2], 1, &l->on_datagram);
  napi_create_reference(env, argv[3], 1, &l->on_overrun);
  napi_async_init(env, NULL, resource_name, &l->async);
  uv_poll_start(&l->poll, UV_READABLE, on_readable);

  napi_value handle;
  napi_create_external(env, l, on_finalize, NULL, &handle);
  return handle;
}

// closeRtnetlinkListener(handle): stops listening and closes the socket; idempotent.
static napi_value close_listener_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok)
    return throw_type(env, "closeRtnetlinkListener(handle) takes a listener handle");
  close_listener((listener_t *)data);
  return NULL;
}

// releasePages(ranges: number[]): undefined
// `ranges` is [start, length, start, length, ...], page-aligned, each a whole read-only
// file mapping without private (copied) pages, as src/memory.ts reads them from
// /proc/self/smaps: for such a mapping MADV_DONTNEED only drops the page-table entries,
// and a later access maps the same page again from the page cache (or the file). Then
// malloc_trim(0) returns the C heap's free pages. Throws on the first madvise error.
static napi_value release_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      !array_length(env, argv[0], 2 * 4096, &count) || count % 2 != 0)
    return throw_type(env, "releasePages(ranges) takes an array of start, length pairs");
  long page = sysconf(_SC_PAGESIZE);
  for (uint32_t i = 0; i < count; i += 2) {
    napi_value start_value, length_value;
    double start, length;
    if (napi_get_element(env, argv[0], i, &start_value) != napi_ok ||
        napi_get_element(env, argv[0], i + 1, &length_value) != napi_ok ||
        napi_get_value_double(env, start_value, &start) != napi_ok ||
        napi_get_value_double(env, length_value, &length) != napi_ok || start < 0 || length <= 0 ||
        (uint64_t)start % (uint64_t)page != 0 || (uint64_t)length % (uint64_t)page != 0)
      return throw_type(env, "each range is a page-aligned start and a positive page-aligned length");
    if (madvise((void *)(uintptr_t)start, (size_t)length, MADV_DONTNEED) != 0) return throw_errno(env, "madvise", errno);
  }
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"sendFrames", NULL, send_frames, NULL, NULL, NULL, napi_default, NULL},
      {"openRtnetlinkListener", NULL, open_listener, NULL, NULL, NULL, napi_default, NULL},
      {"closeRtnetlinkListener", NULL, close_listener_js, NULL, NULL, NULL, napi_default, NULL},
      {"releasePages", NULL, release_pages, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
