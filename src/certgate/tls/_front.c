/*
 * certgate.tls._front: the TLS front end. A native thread accepts on the listening sockets,
 * runs every TLS handshake and, once a client has sent its first application data, hands the
 * connection to Python as the plaintext end of a Unix socket pair, moving the TLS records
 * between the two ends from then on.
 *
 * Why in C: per connection, the Python event loop's TLS transport (uvloop's SSLProtocol over
 * ssl.SSLObject) costs ~90 us of interpreter time on top of OpenSSL's own work, which made a
 * handshake cost 1.15-1.35x nginx's CPU. Here a handshake costs what it costs in nginx: an
 * accept, OpenSSL's work, a few epoll calls. Connections that never send data (scanners,
 * failed handshakes, handshake-only clients) never reach Python at all.
 *
 * What is not done here: any TLS configuration. Each listener serves the SSL_CTX of an
 * ssl.SSLContext built by certgate.tls.contexts (certificate, key, versions, ciphers, options),
 * shared by reference count, so that Python's ssl module stays the one place that configures
 * TLS. Those contexts carry no Python callbacks (checked): this thread never holds the GIL and
 * never touches a Python object.
 *
 * Threads: Python calls post commands (listen, swap a context, unlisten, close) that the
 * front thread carries out between two epoll rounds, so that every structure below is only
 * ever touched by that thread. Finished handshakes go to Python through a queue under a mutex
 * and an eventfd the event loop watches.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE 16384          /* the largest TLS record's plaintext */
#define ACCEPT_BATCH 64            /* connections accepted per wake-up, per listener */
#define LINGER_SECONDS 2.0         /* after close_notify, how long the client may still send */
#define PAUSE_SECONDS 0.1          /* how long a listener rests when out of descriptors */
#define EVENTS 256

enum kind { K_WAKE, K_LISTENER, K_TLS, K_PLAIN };
/* A connection is in the list of its state; all but S_PROXY are timed (FIFO = by deadline).
 * S_DRAINING: the application is done and the client has not taken all of its data yet; it
 * must take some within the send timeout (like nginx's send_timeout), or it is let go. */
enum state { S_HANDSHAKE, S_WAITING, S_LINGER, S_DRAINING, S_PROXY, S_STATES };
enum command { C_NONE, C_LISTEN, C_SET_CONTEXT, C_UNLISTEN, C_CLOSE };

typedef struct { int kind; } item;

typedef struct listener {
    item it;
    int fd;
    long id;
    SSL_CTX *ctx;
    double paused_until; /* 0 while accepting */
    struct listener *next;
} listener;

typedef struct conn conn;

typedef struct {
    item it;
    conn *c;
} endpoint;

struct conn {
    endpoint tls_end, plain_end;
    int fd;        /* the client's TCP socket */
    int pfd;       /* our end of the socket pair, -1 before the hand-off */
    SSL *ssl;
    int state;
    int dead;
    long listener_id;
    double deadline;
    conn *prev, *next; /* in the list of its state */
    uint32_t tls_events, plain_events;
    int plain_registered;
    unsigned char *up; /* client -> application: what the application did not take yet */
    size_t up_off, up_len;
    unsigned char *down; /* application -> client: a write OpenSSL must be given again */
    size_t down_len;
    int up_wants, down_wants; /* SSL_ERROR_WANT_READ / _WRITE of the blocked direction */
    int tls_eof;    /* the client ended (close_notify): nothing more comes from it */
    int app_deaf;   /* the application stopped reading: what the client sends is dropped */
    int plain_eof, plain_shut, plain_hup;
    int notify_pending; /* close_notify not sent yet: the socket was full */
};

typedef struct {
    conn *head, *tail;
} conn_list;

typedef struct {
    int fd;
    long listener_id;
    struct sockaddr_storage peer, local;
    char version[16];
    char cipher[64];
} handoff;

typedef struct {
    int epoll_fd, wake_fd, ready_fd;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    atomic_int refs;
    atomic_int in_flight;   /* handshakes not finished */
    atomic_int connections; /* every connection the thread holds */
    atomic_int command_posted; /* checked between events: a command never waits for a batch */
    /* under mutex: */
    int command, command_done, command_status, exited;
    int command_fd;
    long command_id;
    SSL_CTX *command_ctx;
    handoff *ready;
    size_t ready_len, ready_cap;
    /* front thread only: */
    double handshake_timeout, idle_timeout, send_timeout;
    int closing;
    listener *listeners;
    listener *retired_listeners;
    long next_listener_id;
    conn_list lists[S_STATES];
    conn *graveyard;
    item wake_item;
    unsigned char scratch[BUFFER_SIZE];
} front;

static PyTypeObject *ssl_context_type;

/* The start of CPython's PySSLContext (Modules/_ssl.c): the SSL_CTX comes first. */
typedef struct {
    PyObject_HEAD
    SSL_CTX *ctx;
} ssl_context_head;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- connection lists -------------------------------------------------------------------- */

static void list_remove(front *f, conn *c) {
    conn_list *l = &f->lists[c->state];
    if (c->prev) c->prev->next = c->next; else l->head = c->next;
    if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(front *f, conn *c, int state, double deadline) {
    conn_list *l = &f->lists[state];
    c->state = state;
    c->deadline = deadline;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail) l->tail->next = c; else l->head = c;
    l->tail = c;
}

static void move_to(front *f, conn *c, int state, double deadline) {
    list_remove(f, c);
    list_append(f, c, state, deadline);
}

/* --- epoll interest ---------------------------------------------------------------------- */

static void set_events(front *f, int fd, endpoint *e, uint32_t *current, uint32_t wanted) {
    if (*current == wanted) return;
    struct epoll_event ev = {.events = wanted, .data.ptr = e};
    epoll_ctl(f->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    *current = wanted;
}

static uint32_t events_for(int wants) {
    return wants == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
}

/* --- ending connections ------------------------------------------------------------------ */

static void close_plain(front *f, conn *c) {
    if (c->pfd < 0) return;
    if (c->plain_registered) epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->pfd, NULL);
    close(c->pfd);
    c->pfd = -1;
    c->plain_registered = 0;
}

/* Close both ends at once; the memory is freed after the current round of events. */
static void drop(front *f, conn *c) {
    if (c->dead) return;
    if (c->state == S_HANDSHAKE) atomic_fetch_sub(&f->in_flight, 1);
    list_remove(f, c);
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    close_plain(f, c);
    SSL_free(c->ssl);
    c->ssl = NULL;
    free(c->up);
    free(c->down);
    c->up = c->down = NULL;
    c->dead = 1;
    c->next = f->graveyard;
    f->graveyard = c;
    atomic_fetch_sub(&f->connections, 1);
}

/* The application is done: send close_notify, then let the client finish (lingering close),
 * so that a reset does not destroy what was sent last. */
static void linger(front *f, conn *c);

static void finish(front *f, conn *c, double now) {
    close_plain(f, c);
    move_to(f, c, S_LINGER, now + LINGER_SECONDS);
    c->notify_pending = 1;
    linger(f, c);
}

static void linger(front *f, conn *c) {
    if (c->notify_pending) {
        ERR_clear_error();
        int result = SSL_shutdown(c->ssl);
        if (result < 0 && SSL_get_error(c->ssl, result) == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            set_events(f, c->fd, &c->tls_end, &c->tls_events, EPOLLOUT);
            return; /* the send buffer is full: wait for room, within the linger time */
        }
        ERR_clear_error();
        c->notify_pending = 0;
        if (c->tls_eof || shutdown(c->fd, SHUT_WR) < 0) {
            drop(f, c); /* the client had ended already, or is gone */
            return;
        }
        set_events(f, c->fd, &c->tls_end, &c->tls_events, EPOLLIN);
    }
    for (;;) { /* what the client still sends is read and dropped, up to its end */
        ssize_t n = read(c->fd, f->scratch, BUFFER_SIZE);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        drop(f, c);
        return;
    }
}

/* --- the data phase ---------------------------------------------------------------------- */

static void update_interest(front *f, conn *c) {
    uint32_t tls = 0, plain = 0;
    if (!c->up_len && !c->tls_eof && !c->app_deaf) tls |= events_for(c->up_wants);
    if (c->down_len) tls |= events_for(c->down_wants);
    if (c->up_len) plain |= EPOLLOUT;
    if (!c->down_len && !c->plain_eof) plain |= EPOLLIN;
    set_events(f, c->fd, &c->tls_end, &c->tls_events, tls);
    if (c->plain_registered) set_events(f, c->pfd, &c->plain_end, &c->plain_events, plain);
}

/* Data is read into the thread's scratch buffer and written on at once; only what a socket
 * did not take yet is kept, in a buffer of the connection's own (so that an idle connection
 * holds none). */

static int error_is_transient(void) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static unsigned char *copy_of(const unsigned char *data, size_t length) {
    unsigned char *copy = malloc(length);
    if (copy) memcpy(copy, data, length);
    return copy;
}

/* Send client data to the application; 0 when the connection had to be dropped. */
static int to_application(front *f, conn *c, const unsigned char *data, size_t length,
                          int *progress) {
    ssize_t sent = send(c->pfd, data, length, MSG_NOSIGNAL);
    if (sent < 0 && !error_is_transient()) {
        /* The application stopped reading: nothing more goes its way, but what it still
         * has to send is delivered. */
        free(c->up);
        c->up = NULL;
        c->up_len = 0;
        c->app_deaf = 1;
        c->plain_shut = 1;
        *progress = 1;
        return 1;
    }
    size_t taken = sent > 0 ? (size_t)sent : 0;
    if (taken) *progress = 1;
    if (c->up && data == c->up + c->up_off) { /* a retry from the kept buffer */
        c->up_off += taken;
        c->up_len -= taken;
        if (!c->up_len) {
            free(c->up);
            c->up = NULL;
        }
        return 1;
    }
    if (taken < length) {
        c->up = copy_of(data + taken, length - taken);
        if (!c->up) {
            drop(f, c);
            return 0;
        }
        c->up_off = 0;
        c->up_len = length - taken;
    }
    return 1;
}

/* Send application data to the client: 2 when written, 1 when kept for a retry, 0 when the
 * connection had to be dropped. A write OpenSSL could not finish is retried with the same
 * bytes (from a kept copy: the SSL object accepts a moved buffer). */
static int to_client(front *f, conn *c, const unsigned char *data, size_t length, int *progress) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, data, (int)length);
    if (n > 0) {
        free(c->down);
        c->down = NULL;
        c->down_len = 0;
        *progress = 1;
        return 2;
    }
    int error = SSL_get_error(c->ssl, n);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        drop(f, c);
        return 0;
    }
    c->down_wants = error;
    if (!c->down) {
        c->down = copy_of(data, length);
        if (!c->down) {
            drop(f, c);
            return 0;
        }
        c->down_len = length;
    }
    return 1;
}

/* Move data both ways until each direction waits for a socket. */
static void pump(front *f, conn *c, double now) {
    int wrote = 0;
    for (;;) {
        int progress = 0;
        if (c->up_len) {
            if (!to_application(f, c, c->up + c->up_off, c->up_len, &progress)) return;
        } else if (!c->tls_eof && !c->app_deaf) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, f->scratch, BUFFER_SIZE);
            if (n > 0) {
                progress = 1;
                if (!to_application(f, c, f->scratch, (size_t)n, &progress)) return;
            } else {
                int error = SSL_get_error(c->ssl, n);
                if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
                    c->up_wants = error;
                } else if (error == SSL_ERROR_ZERO_RETURN) {
                    c->tls_eof = 1; /* close_notify (or a FIN): the application sees EOF */
                    progress = 1;
                } else {
                    drop(f, c); /* reset, truncation or a protocol error */
                    return;
                }
            }
        }
        if (!c->up_len && c->tls_eof && !c->plain_shut) {
            shutdown(c->pfd, SHUT_WR);
            c->plain_shut = 1;
        }
        if (c->down_len) {
            int sent = to_client(f, c, c->down, c->down_len, &progress);
            if (!sent) return;
            wrote |= sent == 2;
        } else if (!c->plain_eof) {
            ssize_t n = recv(c->pfd, f->scratch, BUFFER_SIZE, 0);
            if (n > 0) {
                progress = 1;
                int sent = to_client(f, c, f->scratch, (size_t)n, &progress);
                if (!sent) return;
                wrote |= sent == 2;
            } else if (n == 0 || !error_is_transient()) {
                /* The application is done. (ECONNRESET too: a Unix socket closed with data
                 * it did not read reports it, so an application's abort looks the same.) */
                c->plain_eof = 1;
                progress = 1;
            }
        }
        if (c->plain_eof && !c->down_len) {
            finish(f, c, now);
            return;
        }
        if (!progress) break;
    }
    if (c->plain_eof && (c->state == S_PROXY || wrote)) /* (again) the time to take the rest */
        move_to(f, c, S_DRAINING, now + f->send_timeout);
    update_interest(f, c);
}

static void enqueue(front *f, conn *c, int fd) {
    handoff h;
    memset(&h, 0, sizeof h);
    h.fd = fd;
    h.listener_id = c->listener_id;
    socklen_t length = sizeof h.peer;
    if (getpeername(c->fd, (struct sockaddr *)&h.peer, &length) < 0) h.peer.ss_family = AF_UNSPEC;
    length = sizeof h.local;
    if (getsockname(c->fd, (struct sockaddr *)&h.local, &length) < 0) h.local.ss_family = AF_UNSPEC;
    snprintf(h.version, sizeof h.version, "%s", SSL_get_version(c->ssl));
    const char *cipher = SSL_get_cipher_name(c->ssl);
    snprintf(h.cipher, sizeof h.cipher, "%s", cipher ? cipher : "");

    int was_empty = 0, queued = 0;
    pthread_mutex_lock(&f->mutex);
    if (f->ready_len == f->ready_cap) {
        size_t capacity = f->ready_cap ? f->ready_cap * 2 : 64;
        handoff *grown = realloc(f->ready, capacity * sizeof *grown);
        if (grown) {
            f->ready = grown;
            f->ready_cap = capacity;
        }
    }
    if (f->ready_len < f->ready_cap) {
        was_empty = f->ready_len == 0;
        f->ready[f->ready_len++] = h;
        queued = 1;
    }
    pthread_mutex_unlock(&f->mutex);
    if (!queued) {
        close(fd);
        drop(f, c);
        return;
    }
    if (was_empty) {
        uint64_t one = 1;
        ssize_t ignored = write(f->ready_fd, &one, sizeof one);
        (void)ignored;
    }
}

/* The client sent its first data: give the connection to the application. */
static void hand_off(front *f, conn *c, int n, double now) {
    int pair[2];
    c->up = copy_of(f->scratch, (size_t)n);
    if (!c->up || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
        drop(f, c);
        return;
    }
    c->up_off = 0;
    c->up_len = (size_t)n;
    c->up_wants = SSL_ERROR_WANT_READ;
    c->pfd = pair[0];
    c->plain_events = EPOLLOUT;
    struct epoll_event ev = {.events = c->plain_events, .data.ptr = &c->plain_end};
    if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, c->pfd, &ev) < 0) {
        close(pair[1]);
        drop(f, c);
        return;
    }
    c->plain_registered = 1;
    move_to(f, c, S_PROXY, 0);
    enqueue(f, c, pair[1]);
    if (!c->dead) pump(f, c, now);
}

/* --- handshakes -------------------------------------------------------------------------- */

static void wait_for_data(front *f, conn *c, double now) {
    if (f->closing) {
        drop(f, c);
        return;
    }
    ERR_clear_error();
    int n = SSL_read(c->ssl, f->scratch, BUFFER_SIZE);
    if (n > 0) {
        hand_off(f, c, n, now);
        return;
    }
    int error = SSL_get_error(c->ssl, n);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        set_events(f, c->fd, &c->tls_end, &c->tls_events, events_for(error));
        return;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
        /* close_notify before any data: answer it, nothing reaches the application. */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
    }
    drop(f, c);
}

static void shake(front *f, conn *c, double now) {
    ERR_clear_error();
    int result = SSL_do_handshake(c->ssl);
    if (result == 1) {
        atomic_fetch_sub(&f->in_flight, 1);
        move_to(f, c, S_WAITING, now + f->idle_timeout);
        wait_for_data(f, c, now);
        return;
    }
    int error = SSL_get_error(c->ssl, result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        set_events(f, c->fd, &c->tls_end, &c->tls_events, events_for(error));
        return;
    }
    drop(f, c); /* OpenSSL has sent its alert already */
}

static void pause_listener(front *f, listener *l, double now) {
    struct epoll_event ev = {.events = 0, .data.ptr = l};
    epoll_ctl(f->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev);
    l->paused_until = now + PAUSE_SECONDS;
}

static void on_wake(front *f);

static void accept_on(front *f, listener *l, double now) {
    for (int i = 0; i < ACCEPT_BATCH && l->ctx; i++) {
        if (atomic_load(&f->command_posted)) {
            on_wake(f);
            if (!l->ctx) return; /* retired: its descriptor is closed */
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_listener(f, l, now);
            return;
        }
        conn *c = calloc(1, sizeof *c);
        SSL *ssl = c ? SSL_new(l->ctx) : NULL;
        if (!ssl) {
            free(c);
            close(fd);
            ERR_clear_error();
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL_set_fd(ssl, fd);
        SSL_set_accept_state(ssl);
        /* No buffers held while idle (as nginx does); writes retried from a kept copy. */
        SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* A client's TCP FIN without close_notify ends its input only (as nginx does): the
         * application sees the end and can still answer; HTTP frames its own messages. */
        SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        c->tls_end = (endpoint){{K_TLS}, c};
        c->plain_end = (endpoint){{K_PLAIN}, c};
        c->fd = fd;
        c->pfd = -1;
        c->ssl = ssl;
        c->listener_id = l->id;
        c->tls_events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->tls_end};
        if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            SSL_free(ssl);
            free(c);
            close(fd);
            continue;
        }
        atomic_fetch_add(&f->connections, 1);
        atomic_fetch_add(&f->in_flight, 1);
        list_append(f, c, S_HANDSHAKE, now + f->handshake_timeout);
        shake(f, c, now); /* the ClientHello is often there already */
    }
}

static void on_connection_event(front *f, endpoint *e, uint32_t events, double now) {
    conn *c = e->c;
    if (c->dead) return;
    if (e->it.kind == K_TLS && (events & (EPOLLERR | EPOLLHUP)) && c->state != S_HANDSHAKE &&
        c->state != S_LINGER) {
        /* The client reset or is fully gone (a handshake reads its own error and alerts; a
         * lingering close reads what is left first, so that no reset destroys the end). */
        drop(f, c);
        return;
    }
    if (e->it.kind == K_PLAIN && (events & EPOLLHUP) && !c->plain_hup) {
        /* The application closed its end: what it wrote is still to be read, and reads no
         * longer block, so stop watching (a hang-up would be reported on every round). */
        epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->pfd, NULL);
        c->plain_registered = 0;
        c->plain_hup = 1;
    }
    switch (c->state) {
        case S_HANDSHAKE: shake(f, c, now); break;
        case S_WAITING: wait_for_data(f, c, now); break;
        case S_LINGER: linger(f, c); break;
        default: pump(f, c, now); break;
    }
}

/* --- commands from Python ---------------------------------------------------------------- */

static listener *find_listener(front *f, long id, listener ***link) {
    listener **at = &f->listeners;
    for (; *at; at = &(*at)->next) {
        if ((*at)->id == id) {
            if (link) *link = at;
            return *at;
        }
    }
    return NULL;
}

static void retire_listener(front *f, listener **link) {
    listener *l = *link;
    *link = l->next;
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    SSL_CTX_free(l->ctx);
    l->ctx = NULL;
    l->next = f->retired_listeners;
    f->retired_listeners = l;
}

static void close_front(front *f) {
    while (f->listeners) retire_listener(f, &f->listeners);
    f->closing = 1;
    while (f->lists[S_HANDSHAKE].head) drop(f, f->lists[S_HANDSHAKE].head);
    while (f->lists[S_WAITING].head) drop(f, f->lists[S_WAITING].head);
    /* Connections handed off but never taken: closing Python's end ends them. (The mutex is
     * held: commands run under it.) */
    for (size_t i = 0; i < f->ready_len; i++) close(f->ready[i].fd);
    f->ready_len = 0;
}

/* Runs with the mutex held. */
static int run_command(front *f) {
    switch (f->command) {
        case C_LISTEN: {
            if (f->closing) return ESHUTDOWN;
            int flags = fcntl(f->command_fd, F_GETFL);
            int accepting = 0;
            socklen_t size = sizeof accepting;
            if (flags < 0) return errno;
            if (!(flags & O_NONBLOCK) ||
                getsockopt(f->command_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) < 0 ||
                !accepting)
                return EINVAL; /* a blocking accept would stop the whole front end */
            listener *l = calloc(1, sizeof *l);
            if (!l) return ENOMEM;
            int fd = dup(f->command_fd);
            if (fd < 0) {
                free(l);
                return errno;
            }
            l->it.kind = K_LISTENER;
            l->fd = fd;
            l->ctx = f->command_ctx;
            l->id = ++f->next_listener_id;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
            if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int error = errno;
                close(fd);
                free(l);
                return error;
            }
            l->next = f->listeners;
            f->listeners = l;
            f->command_ctx = NULL;
            f->command_id = l->id;
            return 0;
        }
        case C_SET_CONTEXT: {
            if (f->closing) return ESHUTDOWN;
            listener *l = find_listener(f, f->command_id, NULL);
            if (!l) return ENOENT;
            SSL_CTX_free(l->ctx);
            l->ctx = f->command_ctx; /* every connection accepted from now on */
            f->command_ctx = NULL;
            return 0;
        }
        case C_UNLISTEN: {
            listener **link;
            if (!find_listener(f, f->command_id, &link)) return ENOENT;
            retire_listener(f, link);
            return 0;
        }
        case C_CLOSE:
            close_front(f);
            return 0;
    }
    return EINVAL;
}

static void on_wake(front *f) {
    uint64_t count;
    ssize_t ignored = read(f->wake_fd, &count, sizeof count);
    (void)ignored;
    atomic_store(&f->command_posted, 0);
    pthread_mutex_lock(&f->mutex);
    if (f->command != C_NONE && !f->command_done) {
        f->command_status = run_command(f);
        f->command_done = 1;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->mutex);
}

/* --- the thread -------------------------------------------------------------------------- */

static void expire(front *f, double now) {
    static const int timed[] = {S_HANDSHAKE, S_WAITING, S_LINGER, S_DRAINING};
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++) {
        conn_list *l = &f->lists[timed[i]];
        while (l->head && l->head->deadline <= now) drop(f, l->head);
    }
    for (listener *l = f->listeners; l; l = l->next) {
        if (l->paused_until && l->paused_until <= now) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
            epoll_ctl(f->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev);
            l->paused_until = 0;
        }
    }
}

static int timeout_ms(front *f, double now) {
    double next = INFINITY;
    static const int timed[] = {S_HANDSHAKE, S_WAITING, S_LINGER, S_DRAINING};
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++) {
        conn *head = f->lists[timed[i]].head;
        if (head && head->deadline < next) next = head->deadline;
    }
    for (listener *l = f->listeners; l; l = l->next)
        if (l->paused_until && l->paused_until < next) next = l->paused_until;
    if (isinf(next)) return -1;
    double ms = ceil((next - now) * 1000.0);
    return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

static void bury(front *f) {
    while (f->graveyard) {
        conn *c = f->graveyard;
        f->graveyard = c->next;
        free(c);
    }
    while (f->retired_listeners) {
        listener *l = f->retired_listeners;
        f->retired_listeners = l->next;
        free(l);
    }
}

static void release(front *f);

static void *run(void *argument) {
    front *f = argument;
    struct epoll_event events[EVENTS];
    for (;;) {
        if (f->closing && atomic_load(&f->connections) == 0) break;
        int n = epoll_wait(f->epoll_fd, events, EVENTS, timeout_ms(f, now_seconds()));
        if (n < 0 && errno != EINTR) break;
        double now = now_seconds();
        for (int i = 0; i < n; i++) {
            item *it = events[i].data.ptr;
            /* A batch of handshakes takes milliseconds; a swap must not wait for it. */
            if (atomic_load(&f->command_posted)) on_wake(f);
            if (it->kind == K_WAKE) {
                on_wake(f);
            } else if (it->kind == K_LISTENER) {
                listener *l = (listener *)it;
                if (l->ctx) accept_on(f, l, now); /* a retired one has no context */
            } else {
                on_connection_event(f, (endpoint *)it, events[i].events, now);
            }
        }
        expire(f, now);
        bury(f);
    }
    /* Closed and every connection ended. */
    pthread_mutex_lock(&f->mutex);
    f->exited = 1;
    if (f->command != C_NONE && !f->command_done) {
        f->command_status = ESHUTDOWN;
        f->command_done = 1;
    }
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mutex);
    release(f);
    return NULL;
}

static void release(front *f) {
    if (atomic_fetch_sub(&f->refs, 1) != 1) return;
    for (size_t i = 0; i < f->ready_len; i++) close(f->ready[i].fd);
    free(f->ready);
    if (f->command_ctx) SSL_CTX_free(f->command_ctx);
    close(f->epoll_fd);
    close(f->wake_fd);
    close(f->ready_fd);
    pthread_mutex_destroy(&f->mutex);
    pthread_cond_destroy(&f->changed);
    free(f);
}

/* Post a command and wait for the front thread to carry it out (without the GIL). */
static int post(front *f, int command, int fd, long *id, SSL_CTX *ctx) {
    int status;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&f->mutex);
    while (f->command != C_NONE && !f->exited) pthread_cond_wait(&f->changed, &f->mutex);
    if (f->exited) {
        status = ESHUTDOWN;
        if (ctx) SSL_CTX_free(ctx);
    } else {
        f->command = command;
        f->command_done = 0;
        f->command_fd = fd;
        f->command_id = id ? *id : 0;
        f->command_ctx = ctx;
        atomic_store(&f->command_posted, 1);
        uint64_t one = 1;
        ssize_t ignored = write(f->wake_fd, &one, sizeof one);
        (void)ignored;
        while (!f->command_done) pthread_cond_wait(&f->changed, &f->mutex);
        status = f->command_status;
        if (id) *id = f->command_id;
        if (f->command_ctx) { /* not taken */
            SSL_CTX_free(f->command_ctx);
            f->command_ctx = NULL;
        }
        f->command = C_NONE;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->mutex);
    Py_END_ALLOW_THREADS
    return status;
}

/* --- the Python type --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    front *f;
    int closed;
} FrontObject;

static PyObject *closed_error(void) {
    PyErr_SetString(PyExc_RuntimeError, "this TLS front end is closed");
    return NULL;
}

/* The SSL_CTX of an ssl.SSLContext, with a reference of its own; NULL with an exception. */
static SSL_CTX *context_of(PyObject *context) {
    if (!PyObject_TypeCheck(context, ssl_context_type)) {
        PyErr_SetString(PyExc_TypeError, "context must be an ssl.SSLContext");
        return NULL;
    }
    SSL_CTX *ctx = ((ssl_context_head *)context)->ctx;
    /* The layout is CPython's, not a public API: check it against what the object says. */
    PyObject *options = PyObject_GetAttrString(context, "options");
    if (!options) return NULL;
    unsigned long long said = PyLong_AsUnsignedLongLong(options);
    Py_DECREF(options);
    if (said == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (ctx == NULL || said != (unsigned long long)SSL_CTX_get_options(ctx)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this Python's ssl.SSLContext is not laid out as certgate expects");
        return NULL;
    }
    static const char *const python_callbacks[] = {"sni_callback", "_msg_callback"};
    for (size_t i = 0; i < sizeof python_callbacks / sizeof python_callbacks[0]; i++) {
        PyObject *callback = PyObject_GetAttrString(context, python_callbacks[i]);
        if (!callback) return NULL;
        int has_callback = callback != Py_None;
        Py_DECREF(callback);
        if (has_callback) {
            PyErr_Format(PyExc_ValueError, "a served context must not have a %s",
                         python_callbacks[i]);
            return NULL;
        }
    }
    if (SSL_CTX_get_keylog_callback(ctx) || SSL_CTX_get_info_callback(ctx)) {
        /* keylog_filename: CPython's callback expects its own SSL objects */
        PyErr_SetString(PyExc_ValueError, "a served context must not log keys or TLS events");
        return NULL;
    }
    SSL_CTX_up_ref(ctx);
    return ctx;
}

static PyObject *raise_status(int status) {
    if (status == ESHUTDOWN) return closed_error();
    if (status == ENOENT) {
        PyErr_SetString(PyExc_KeyError, "no such listener");
        return NULL;
    }
    errno = status;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static void Front_dealloc(FrontObject *self) {
    if (self->f) {
        if (!self->closed) post(self->f, C_CLOSE, -1, NULL, NULL);
        release(self->f);
        self->f = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Front_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"handshake_timeout", "idle_timeout", "send_timeout", NULL};
    double handshake_timeout, idle_timeout, send_timeout;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ddd", keywords, &handshake_timeout,
                                     &idle_timeout, &send_timeout))
        return NULL;
    if (!(handshake_timeout > 0) || !(idle_timeout > 0) || !(send_timeout > 0)) {
        PyErr_SetString(PyExc_ValueError, "timeouts must be positive");
        return NULL;
    }
    front *f = calloc(1, sizeof *f);
    if (!f) return PyErr_NoMemory();
    f->handshake_timeout = handshake_timeout;
    f->idle_timeout = idle_timeout;
    f->send_timeout = send_timeout;
    f->wake_item.kind = K_WAKE;
    f->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    f->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->wake_item};
    if (f->epoll_fd < 0 || f->wake_fd < 0 || f->ready_fd < 0 ||
        epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->wake_fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        if (f->epoll_fd >= 0) close(f->epoll_fd);
        if (f->wake_fd >= 0) close(f->wake_fd);
        if (f->ready_fd >= 0) close(f->ready_fd);
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mutex, NULL);
    pthread_cond_init(&f->changed, NULL);
    atomic_init(&f->refs, 2);
    /* Signals stay with Python's main thread. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int error = pthread_create(&f->thread, NULL, run, f);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error) {
        atomic_store(&f->refs, 1);
        release(f);
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pthread_detach(f->thread);
    FrontObject *self = (FrontObject *)type->tp_alloc(type, 0);
    if (!self) {
        /* The thread is running: close it through a command, then drop our reference. */
        post(f, C_CLOSE, -1, NULL, NULL);
        release(f);
        return NULL;
    }
    self->f = f;
    return (PyObject *)self;
}

static PyObject *Front_listen(FrontObject *self, PyObject *args) {
    int fd;
    PyObject *context;
    if (!PyArg_ParseTuple(args, "iO", &fd, &context)) return NULL;
    if (self->closed) return closed_error();
    SSL_CTX *ctx = context_of(context);
    if (!ctx) return NULL;
    long id = 0;
    int status = post(self->f, C_LISTEN, fd, &id, ctx);
    if (status) return raise_status(status);
    return PyLong_FromLong(id);
}

static PyObject *Front_set_context(FrontObject *self, PyObject *args) {
    long id;
    PyObject *context;
    if (!PyArg_ParseTuple(args, "lO", &id, &context)) return NULL;
    if (self->closed) return closed_error();
    SSL_CTX *ctx = context_of(context);
    if (!ctx) return NULL;
    int status = post(self->f, C_SET_CONTEXT, -1, &id, ctx);
    if (status) return raise_status(status);
    Py_RETURN_NONE;
}

static PyObject *Front_unlisten(FrontObject *self, PyObject *args) {
    long id;
    if (!PyArg_ParseTuple(args, "l", &id)) return NULL;
    if (self->closed) return closed_error();
    int status = post(self->f, C_UNLISTEN, -1, &id, NULL);
    if (status) return raise_status(status);
    Py_RETURN_NONE;
}

static PyObject *Front_close(FrontObject *self, PyObject *unused) {
    (void)unused;
    if (!self->closed) {
        self->closed = 1;
        int status = post(self->f, C_CLOSE, -1, NULL, NULL);
        if (status && status != ESHUTDOWN) return raise_status(status);
    }
    Py_RETURN_NONE;
}

static PyObject *address(const struct sockaddr_storage *a) {
    char host[INET6_ADDRSTRLEN];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        /* (host, port) as for IPv4: uvicorn takes a client's address only from a pair. */
        return Py_BuildValue("(si)", host, ntohs(in6->sin6_port));
    }
    Py_RETURN_NONE;
}

static PyObject *Front_take(FrontObject *self, PyObject *unused) {
    (void)unused;
    front *f = self->f;
    uint64_t count;
    /* Read the signal first: a hand-off queued after this read signals again. */
    ssize_t ignored = read(f->ready_fd, &count, sizeof count);
    (void)ignored;
    pthread_mutex_lock(&f->mutex);
    handoff *taken = f->ready;
    size_t length = f->ready_len;
    f->ready = NULL;
    f->ready_len = f->ready_cap = 0;
    pthread_mutex_unlock(&f->mutex);
    PyObject *result = PyList_New((Py_ssize_t)length);
    size_t i = 0;
    for (; result && i < length; i++) {
        handoff *h = &taken[i];
        PyObject *entry = Py_BuildValue("(ilNNss)", h->fd, h->listener_id, address(&h->peer),
                                        address(&h->local), h->version, h->cipher);
        if (!entry) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, entry);
    }
    if (!result) /* none reaches Python: closing them ends their connections */
        for (size_t j = 0; j < length; j++) close(taken[j].fd);
    free(taken);
    return result;
}

static PyObject *Front_fileno(FrontObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromLong(self->f->ready_fd);
}

static PyObject *Front_in_flight(FrontObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLong(atomic_load(&self->f->in_flight));
}

static PyObject *Front_connections(FrontObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLong(atomic_load(&self->f->connections));
}

static PyMethodDef Front_methods[] = {
    {"listen", (PyCFunction)Front_listen, METH_VARARGS,
     "listen(fd, context) -> id: accept on a duplicate of the listening socket fd."},
    {"set_context", (PyCFunction)Front_set_context, METH_VARARGS,
     "set_context(id, context): connections accepted from now on get this context."},
    {"unlisten", (PyCFunction)Front_unlisten, METH_VARARGS,
     "unlisten(id): stop accepting on that listener; its connections go on."},
    {"close", (PyCFunction)Front_close, METH_NOARGS,
     "close(): stop every listener, end the handshakes in flight and connections not yet taken."},
    {"take", (PyCFunction)Front_take, METH_NOARGS,
     "take() -> [(fd, listener id, peer, local, version, cipher)]: connections handed off."},
    {"fileno", (PyCFunction)Front_fileno, METH_NOARGS,
     "fileno() -> the eventfd readable when take() has connections."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Front_getset[] = {
    {"in_flight", (getter)Front_in_flight, NULL, "Handshakes accepted and not yet ended.", NULL},
    {"connections", (getter)Front_connections, NULL, "Every connection the front end holds.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FrontType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "certgate.tls._front.Front",
    .tp_basicsize = sizeof(FrontObject),
    .tp_dealloc = (destructor)Front_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The TLS front end: a native thread that accepts and runs the TLS layer.",
    .tp_methods = Front_methods,
    .tp_getset = Front_getset,
    .tp_new = Front_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "certgate.tls._front", "certgate's TLS front end.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__front(void) {
    PyObject *ssl_module = PyImport_ImportModule("_ssl");
    if (!ssl_module) return NULL;
    /* Contexts are shared by pointer: both must use the very same OpenSSL. */
    PyObject *version = PyObject_GetAttrString(ssl_module, "OPENSSL_VERSION");
    int same = version && PyUnicode_Check(version) &&
               strcmp(PyUnicode_AsUTF8(version), OpenSSL_version(OPENSSL_VERSION)) == 0;
    Py_XDECREF(version);
    ssl_context_type = (PyTypeObject *)PyObject_GetAttrString(ssl_module, "_SSLContext");
    Py_DECREF(ssl_module);
    if (!ssl_context_type) return NULL;
    if (!same) {
        PyErr_Format(PyExc_ImportError, "Python's ssl module does not use %s",
                     OpenSSL_version(OPENSSL_VERSION));
        return NULL;
    }
    if (PyType_Ready(&FrontType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&FrontType);
    if (PyModule_AddObject(m, "Front", (PyObject *)&FrontType) < 0) {
        Py_DECREF(&FrontType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
