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
 * TLS configuration: each listener serves an SSL_CTX built here (the Context type below) from
 * the values of certgate.tls.policy, the one definition of the policy (versions, ciphers,
 * groups, options, tickets, ALPN), and the chain and key as bytes (the key's buffer is cleansed
 * once read). Nothing of CPython's ssl module is used: the front end links libssl itself, and
 * its contexts carry only C callbacks (ALPN, session ticket keys), so this thread never holds
 * the GIL and never touches a Python object.
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
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
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
 * S_SENDING: a write to the client waits for room in its socket; the client must take some of
 * it within the send timeout (nginx's send_timeout), whether or not the application is done,
 * or it is let go. */
enum state { S_HANDSHAKE, S_WAITING, S_LINGER, S_SENDING, S_PROXY, S_STATES };
enum command {
    C_NONE, C_LISTEN, C_SET_CONTEXT, C_UNLISTEN, C_CLOSE, C_SET_TICKET_KEYS, C_SET_CHALLENGES
};
/* System calls whose failures (out of descriptors or memory) Python logs, as nginx does. */
enum failure { F_ACCEPT, F_SOCKETPAIR, F_KINDS };
static const char *const failure_names[F_KINDS] = {"accept", "socketpair"};

/* Session ticket keys: the first encrypts new tickets, every one decrypts (a ticket made
 * under a previous key is accepted and renewed). Derived by Python from a secret every worker
 * shares, so that a ticket made by one worker resumes in any other. */
#define TICKET_KEYS 4
typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} ticket_key;

/* TLS-ALPN-01 (RFC 8737): a client offering this protocol is an ACME CA validating the name
 * it sends as SNI. It gets the challenge certificate of that name (a context whose only ALPN
 * protocol is this one), and nothing else: a name without a challenge is refused. */
#define ACME_TLS "acme-tls/1"
#define ACME_TLS_LENGTH (sizeof ACME_TLS - 1)

/* The names being validated and their challenge contexts: a few at a time (the names of the
 * orders in flight), so a list searched in order. */
typedef struct {
    char name[256]; /* a DNS name, lower case */
    SSL_CTX *ctx;
} challenge;

typedef struct {
    challenge *entries;
    size_t count;
} challenge_table;

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
    uint64_t sent; /* bytes written to the client's socket when last looked at */
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
    atomic_long handshakes_completed, handshakes_failed; /* since the front end started */
    atomic_int connections; /* every connection the thread holds */
    atomic_int command_posted; /* checked between events: a command never waits for a batch */
    /* under mutex: */
    int command, command_done, command_status, exited;
    int command_fd;
    long command_id;
    SSL_CTX *command_ctx;
    ticket_key command_keys[TICKET_KEYS];
    int command_key_count;
    challenge_table command_challenges; /* in: the new table; out: the one it replaced */
    handoff *ready;
    size_t ready_len, ready_cap;
    /* Deadlines, set by Python at any time (set_timeouts): read when a phase starts. */
    _Atomic double handshake_timeout, idle_timeout, send_timeout;
    atomic_int timeouts_changed; /* the thread brings the running deadlines forward */
    atomic_int abort_requested;  /* abort(): end every connection now */
    atomic_long failures[F_KINDS];    /* since Python last looked */
    atomic_int failure_errno[F_KINDS]; /* the last one's errno */
    /* front thread only: */
    int closing;
    listener *listeners;
    listener *retired_listeners;
    long next_listener_id;
    conn_list lists[S_STATES];
    ticket_key ticket_keys[TICKET_KEYS];
    int ticket_key_count;
    challenge_table challenges;
    conn *graveyard;
    item wake_item;
    unsigned char scratch[BUFFER_SIZE];
} front;

/* Where an SSL finds its front end (for the ticket keys), and an SSL_CTX its ALPN list. */
static int ssl_front_index = -1;
static int ctx_alpn_index = -1;
/* AES-256-CBC for tickets, fetched once: OpenSSL 3 would look it up on every ticket. */
static EVP_CIPHER *ticket_cipher;

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

/* Count a failed system call for Python to log, and wake it. */
static void note_failure(front *f, int kind) {
    atomic_store(&f->failure_errno[kind], errno);
    atomic_fetch_add(&f->failures[kind], 1);
    uint64_t one = 1;
    ssize_t ignored = write(f->ready_fd, &one, sizeof one);
    (void)ignored;
}

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
    if (c->state == S_HANDSHAKE) {
        atomic_fetch_sub(&f->in_flight, 1);
        atomic_fetch_add(&f->handshakes_failed, 1); /* refused, timed out, or closed by us */
    }
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

/* Send application data to the client: 1 when written or kept for a retry, 0 when the
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
        return 1;
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
            if (!to_client(f, c, c->down, c->down_len, &progress)) return;
        } else if (!c->plain_eof) {
            ssize_t n = recv(c->pfd, f->scratch, BUFFER_SIZE, 0);
            if (n > 0) {
                progress = 1;
                if (!to_client(f, c, f->scratch, (size_t)n, &progress)) return;
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
    /* While a write waits for room, the client must take some of it within the send timeout
     * (counted again whenever bytes reach its socket), at any time of the connection. */
    uint64_t written = BIO_number_written(SSL_get_wbio(c->ssl));
    if (c->down_len) {
        if (c->state != S_SENDING || written != c->sent)
            move_to(f, c, S_SENDING, now + f->send_timeout);
    } else if (c->state == S_SENDING) {
        move_to(f, c, S_PROXY, 0);
    }
    c->sent = written;
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
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
        note_failure(f, F_SOCKETPAIR);
        drop(f, c);
        return;
    }
    c->pfd = pair[0];
    /* The first data goes in before Python hears of the connection, so that the application
     * finds it waiting instead of being woken a second time for it (a fresh socket takes a
     * whole record; what it does not take is kept and sent on by pump). */
    ssize_t sent = send(c->pfd, f->scratch, (size_t)n, MSG_NOSIGNAL);
    size_t taken = sent > 0 ? (size_t)sent : 0;
    if (taken < (size_t)n) {
        c->up = copy_of(f->scratch + taken, (size_t)n - taken);
        if (!c->up) {
            close(pair[1]);
            drop(f, c);
            return;
        }
        c->up_off = 0;
        c->up_len = (size_t)n - taken;
    }
    c->up_wants = SSL_ERROR_WANT_READ;
    c->plain_events = c->up_len ? EPOLLOUT : EPOLLIN;
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

/* Whether the connection answered a TLS-ALPN-01 challenge (only a challenge context selects
 * acme-tls/1). */
static int answered_challenge(SSL *ssl) {
    const unsigned char *selected;
    unsigned int length;
    SSL_get0_alpn_selected(ssl, &selected, &length);
    return length == ACME_TLS_LENGTH && memcmp(selected, ACME_TLS, ACME_TLS_LENGTH) == 0;
}

static void shake(front *f, conn *c, double now) {
    ERR_clear_error();
    int result = SSL_do_handshake(c->ssl);
    if (result == 1) {
        atomic_fetch_sub(&f->in_flight, 1);
        atomic_fetch_add(&f->handshakes_completed, 1);
        if (answered_challenge(c->ssl)) {
            /* The handshake was the answer (RFC 8737): nothing is served over acme-tls/1. */
            finish(f, c, now);
            return;
        }
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
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Rest instead of spinning on a queue that cannot be taken; Python logs it. */
                note_failure(f, F_ACCEPT);
                pause_listener(f, l, now);
            }
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
        SSL_set_ex_data(ssl, ssl_front_index, f); /* the ticket keys */
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
        case C_SET_TICKET_KEYS:
            memcpy(f->ticket_keys, f->command_keys, sizeof f->ticket_keys);
            f->ticket_key_count = f->command_key_count;
            OPENSSL_cleanse(f->command_keys, sizeof f->command_keys);
            return 0;
        case C_SET_CHALLENGES: { /* the replaced table goes back to the caller, to be freed */
            challenge_table previous = f->challenges;
            f->challenges = f->command_challenges;
            f->command_challenges = previous;
            return 0;
        }
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

/* New timeouts apply to the phases that start from now on; a phase already running ends no
 * later than it would under them (which keeps every list in deadline order). */
static void bring_deadlines_forward(front *f, double now) {
    static const int states[] = {S_HANDSHAKE, S_WAITING, S_SENDING};
    double timeouts[] = {f->handshake_timeout, f->idle_timeout, f->send_timeout};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        for (conn *c = f->lists[states[i]].head; c; c = c->next)
            if (c->deadline > now + timeouts[i]) c->deadline = now + timeouts[i];
}

/* abort(): every connection ends now, whatever state it is in (the end of a stop's grace). */
static void abort_all(front *f) {
    for (int s = 0; s < S_STATES; s++)
        while (f->lists[s].head) drop(f, f->lists[s].head);
}

static void expire(front *f, double now) {
    static const int timed[] = {S_HANDSHAKE, S_WAITING, S_LINGER, S_SENDING};
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
    static const int timed[] = {S_HANDSHAKE, S_WAITING, S_LINGER, S_SENDING};
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
        if (atomic_exchange(&f->timeouts_changed, 0)) bring_deadlines_forward(f, now_seconds());
        if (atomic_exchange(&f->abort_requested, 0)) {
            abort_all(f);
            bury(f);
        }
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

static void free_challenges(challenge_table *table) {
    for (size_t i = 0; i < table->count; i++) SSL_CTX_free(table->entries[i].ctx);
    free(table->entries);
    table->entries = NULL;
    table->count = 0;
}

static void release(front *f) {
    if (atomic_fetch_sub(&f->refs, 1) != 1) return;
    free_challenges(&f->challenges);
    free_challenges(&f->command_challenges);
    for (size_t i = 0; i < f->ready_len; i++) close(f->ready[i].fd);
    free(f->ready);
    if (f->command_ctx) SSL_CTX_free(f->command_ctx);
    OPENSSL_cleanse(f->ticket_keys, sizeof f->ticket_keys);
    OPENSSL_cleanse(f->command_keys, sizeof f->command_keys);
    close(f->epoll_fd);
    close(f->wake_fd);
    close(f->ready_fd);
    pthread_mutex_destroy(&f->mutex);
    pthread_cond_destroy(&f->changed);
    free(f);
}

/* Post a command and wait for the front thread to carry it out (without the GIL). ``keys``:
 * the ticket keys of C_SET_TICKET_KEYS; ``table``: the challenges of C_SET_CHALLENGES, given
 * back as the table they replaced (or as they were, when the front end has exited): the
 * caller frees it. */
static int post_with(front *f, int command, int fd, long *id, SSL_CTX *ctx,
                     const ticket_key *keys, int key_count, challenge_table *table) {
    int status;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&f->mutex);
    while (f->command != C_NONE && !f->exited) pthread_cond_wait(&f->changed, &f->mutex);
    if (f->exited) {
        status = ESHUTDOWN;
        if (ctx) SSL_CTX_free(ctx);
    } else {
        if (keys) {
            memcpy(f->command_keys, keys, (size_t)key_count * sizeof *keys);
            f->command_key_count = key_count;
        }
        if (table) f->command_challenges = *table;
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
        if (table) {
            *table = f->command_challenges;
            f->command_challenges = (challenge_table){NULL, 0};
        }
        f->command = C_NONE;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->mutex);
    Py_END_ALLOW_THREADS
    return status;
}

static int post(front *f, int command, int fd, long *id, SSL_CTX *ctx) {
    return post_with(f, command, fd, id, ctx, NULL, 0, NULL);
}

/* --- contexts ---------------------------------------------------------------------------- */

/* TLS 1.3 session tickets under the front end's keys (RFC 5077's layout: key name, IV,
 * AES-256-CBC, HMAC-SHA256). TLS 1.2 gets none: a TLS 1.2 ticket holds the session's master
 * secret, so a stolen ticket key would open recorded sessions; a TLS 1.3 ticket holds only the
 * resumption secret, and resumption runs a new (EC)DHE exchange (psk_dhe_ke) — forward secret. */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int encrypt) {
    front *f = SSL_get_ex_data(ssl, ssl_front_index);
    if (!f || f->ticket_key_count == 0 || SSL_version(ssl) < TLS1_3_VERSION) return 0;
    const ticket_key *key = NULL;
    int result = 1;
    if (encrypt) {
        key = &f->ticket_keys[0];
        memcpy(name, key->name, sizeof key->name);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) <= 0) return -1;
    } else {
        for (int i = 0; i < f->ticket_key_count && !key; i++)
            if (CRYPTO_memcmp(name, f->ticket_keys[i].name, sizeof key->name) == 0) {
                key = &f->ticket_keys[i];
                result = i == 0 ? 1 : 2; /* 2: made under an older key, send a new one */
            }
        if (!key) return 0; /* unknown or expired key: a full handshake */
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac,
                                          sizeof key->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(mac, params)) return -1;
    int ok = encrypt ? EVP_EncryptInit_ex(cipher, ticket_cipher, NULL, key->aes, iv)
                     : EVP_DecryptInit_ex(cipher, ticket_cipher, NULL, key->aes, iv);
    return ok ? result : -1;
}

/* Whether a ClientHello's ALPN extension (RFC 7301: a 2-byte length, then 1-byte-length
 * names) offers acme-tls/1. */
static int offers_acme_tls(const unsigned char *offer, size_t length) {
    if (length < 2 || (((size_t)offer[0] << 8) | offer[1]) != length - 2) return 0;
    for (size_t i = 2; i < length; i += 1 + (size_t)offer[i]) {
        size_t name_length = offer[i];
        if (i + 1 + name_length > length) return 0;
        if (name_length == ACME_TLS_LENGTH && memcmp(offer + i + 1, ACME_TLS, name_length) == 0)
            return 1;
    }
    return 0;
}

/* The host name a ClientHello's server_name extension (RFC 6066) names, into ``name``; 0 when
 * there is none (or it is not one host name of at most 255 bytes). */
static int server_name_of(SSL *ssl, char name[256]) {
    const unsigned char *p;
    size_t length;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &length) || length < 5)
        return 0;
    size_t list_length = ((size_t)p[0] << 8) | p[1];
    size_t name_length = ((size_t)p[3] << 8) | p[4];
    if (list_length != length - 2 || p[2] != TLSEXT_NAMETYPE_host_name || name_length == 0 ||
        name_length > 255 || 5 + name_length > length || memchr(p + 5, 0, name_length))
        return 0;
    memcpy(name, p + 5, name_length);
    name[name_length] = 0;
    return 1;
}

/* TLS-ALPN-01: a client offering acme-tls/1 takes the challenge context of the name it sends,
 * or is refused (the served certificate is never presented with acme-tls/1 selected). The
 * switch carries the challenge's certificate and ALPN list; the connection resumes no session
 * (another session ID context) and gets no ticket. 0 with ``*alert`` set: refused. */
static int answer_challenge(SSL *ssl, int *alert) {
    const unsigned char *offer;
    size_t length;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                   &offer, &length) ||
        !offers_acme_tls(offer, length))
        return 1;
    front *f = SSL_get_ex_data(ssl, ssl_front_index);
    char name[256];
    SSL_CTX *ctx = NULL;
    if (f && server_name_of(ssl, name))
        for (size_t i = 0; i < f->challenges.count && !ctx; i++)
            if (strcasecmp(f->challenges.entries[i].name, name) == 0)
                ctx = f->challenges.entries[i].ctx;
    if (!ctx) {
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL; /* no challenge for that name here */
        return 0;
    }
    static const unsigned char context_id[] = "certgate " ACME_TLS;
    if (!SSL_set_SSL_CTX(ssl, ctx) ||
        !SSL_set_session_id_context(ssl, context_id, sizeof context_id - 1)) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return 0;
    }
    SSL_set_options(ssl, SSL_OP_NO_TICKET);
    SSL_set_num_tickets(ssl, 0);
    return 1;
}

/* Every ClientHello: a TLS-ALPN-01 challenge is answered (above). And a client that will not
 * get TLS 1.3 gets no ticket (see on_ticket_key): it must not even be promised one, since
 * OpenSSL then gives the session no ID and it could not resume from the session cache either.
 * Runs before the version is chosen, so it reads the client's offer. */
static int on_client_hello(SSL *ssl, int *alert, void *unused) {
    (void)unused;
    if (!answer_challenge(ssl, alert)) return SSL_CLIENT_HELLO_ERROR;
    const unsigned char *offer;
    size_t length;
    int tls13 = 0;
    if (SSL_get_max_proto_version(ssl) == 0 || SSL_get_max_proto_version(ssl) >= TLS1_3_VERSION) {
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &offer, &length) &&
            length >= 1 && (size_t)offer[0] + 1 <= length) {
            for (size_t i = 1; i + 1 < (size_t)offer[0] + 1; i += 2)
                if (offer[i] == 0x03 && offer[i + 1] == 0x04) tls13 = 1;
        }
    }
    if (!tls13) SSL_set_options(ssl, SSL_OP_NO_TICKET);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ALPN: the first of our protocols the client offers; none in common is refused with the
 * no_application_protocol alert (RFC 7301) — ALPACA's mitigation. A client that offers no
 * ALPN is not asked. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length,
                   const unsigned char *offered, unsigned int offered_length, void *unused) {
    (void)unused;
    const unsigned char *ours = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_alpn_index);
    if (!ours) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, out_length, ours + 1, ours[0], offered, offered_length) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* The ALPN list is kept as [length][wire format], freed with its SSL_CTX. */
static void free_alpn(void *parent, void *pointer, CRYPTO_EX_DATA *data, int index, long argl,
                      void *argp) {
    (void)parent, (void)data, (void)index, (void)argl, (void)argp;
    OPENSSL_free(pointer);
}

static int no_password(char *buffer, int size, int writing, void *unused) {
    (void)buffer, (void)size, (void)writing, (void)unused;
    return 0; /* an encrypted key is an error, never a prompt */
}

typedef struct {
    int minimum_version, maximum_version;
    const char *ciphers, *ciphersuites, *groups;
    const unsigned char *alpn; /* wire format */
    size_t alpn_length;
    int tickets;         /* TLS 1.3 tickets sent per full handshake; 0: none */
    long ticket_lifetime; /* seconds */
    int prefer_server_ciphers;
} settings;

/* The last OpenSSL error's reason, for a message; clears the queue. */
static const char *openssl_reason(void) {
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return reason ? reason : "unknown reason";
}

/* An SSL_CTX from the policy's values; NULL with ``*field`` naming the value refused. */
static SSL_CTX *new_ctx(const settings *s, const char **field, const char **reason) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *field = "context";
        *reason = openssl_reason();
        return NULL;
    }
    *field = NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, s->minimum_version))
        *field = "minimum_version";
    else if (!SSL_CTX_set_max_proto_version(ctx, s->maximum_version))
        *field = "maximum_version";
    else if (!SSL_CTX_set_cipher_list(ctx, s->ciphers))
        *field = "tls12_ciphers";
    else if (!SSL_CTX_set_ciphersuites(ctx, s->ciphersuites))
        *field = "tls13_ciphersuites";
    else if (!SSL_CTX_set1_groups_list(ctx, s->groups))
        *field = "groups";
    if (*field) {
        *reason = openssl_reason();
        SSL_CTX_free(ctx);
        return NULL;
    }
    uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                       SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (s->prefer_server_ciphers) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (s->tickets <= 0) options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_num_tickets(ctx, s->tickets > 0 ? (size_t)s->tickets : 0);
    if (s->tickets > 0) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
        SSL_CTX_set_timeout(ctx, s->ticket_lifetime);
    }
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"certgate", 8);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (s->alpn_length) {
        unsigned char *alpn = OPENSSL_malloc(s->alpn_length + 1);
        if (!alpn || !SSL_CTX_set_ex_data(ctx, ctx_alpn_index, alpn)) {
            OPENSSL_free(alpn);
            SSL_CTX_free(ctx);
            *field = "context";
            *reason = "out of memory";
            return NULL;
        }
        alpn[0] = (unsigned char)s->alpn_length;
        memcpy(alpn + 1, s->alpn, s->alpn_length);
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    }
    return ctx;
}

/* The chain (PEM: leaf first) and key (PEM) into ``ctx``; 0 with ``*reason`` set. */
static int use_chain_and_key(SSL_CTX *ctx, const void *chain, size_t chain_length,
                             const void *key, size_t key_length, const char **reason) {
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(chain, (int)chain_length);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
    int ok = leaf && SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    while (ok) {
        X509 *issuer = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (!issuer) {
            unsigned long error = ERR_peek_last_error();
            if (ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE)
                ERR_clear_error(); /* the end of the chain */
            else
                ok = 0;
            break;
        }
        ok = SSL_CTX_add0_chain_cert(ctx, issuer);
        if (!ok) X509_free(issuer);
    }
    BIO_free(bio);
    if (!ok) {
        *reason = openssl_reason();
        return 0;
    }
    bio = BIO_new_mem_buf(key, (int)key_length);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    BIO_free(bio);
    ok = pkey && SSL_CTX_use_PrivateKey(ctx, pkey) && SSL_CTX_check_private_key(ctx);
    EVP_PKEY_free(pkey);
    if (!ok) *reason = openssl_reason();
    return ok;
}

/* --- the Python type --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    front *f;
    int closed;
} FrontObject;

static int check_timeouts(double handshake, double idle, double send) {
    if (!(handshake > 0) || !(idle > 0) || !(send > 0) || isinf(handshake) || isinf(idle) ||
        isinf(send)) {
        PyErr_SetString(PyExc_ValueError, "timeouts must be positive and finite");
        return 0;
    }
    return 1;
}

static void wake(front *f) {
    uint64_t one = 1;
    ssize_t ignored = write(f->wake_fd, &one, sizeof one);
    (void)ignored;
}

static PyObject *closed_error(void) {
    PyErr_SetString(PyExc_RuntimeError, "this TLS front end is closed");
    return NULL;
}

/* A server context: the policy's values, and a chain and key when it is to be served. */
typedef struct {
    PyObject_HEAD
    SSL_CTX *ctx;
    int served; /* has a certificate: can be listened with */
} ContextObject;

static PyTypeObject ContextType;

static void Context_dealloc(ContextObject *self) {
    SSL_CTX_free(self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Context_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"minimum_version", "maximum_version", "ciphers", "ciphersuites",
                               "groups", "alpn", "tickets", "ticket_lifetime",
                               "prefer_server_ciphers", "chain", "key", NULL};
    settings s;
    memset(&s, 0, sizeof s);
    Py_buffer alpn, chain = {0}, key = {0};
    PyObject *chain_object = Py_None, *key_object = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iisssy*ilp|OO", keywords,
                                     &s.minimum_version, &s.maximum_version, &s.ciphers,
                                     &s.ciphersuites, &s.groups, &alpn, &s.tickets,
                                     &s.ticket_lifetime, &s.prefer_server_ciphers, &chain_object,
                                     &key_object))
        return NULL;
    PyObject *result = NULL;
    SSL_CTX *ctx = NULL;
    if ((chain_object == Py_None) != (key_object == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "a chain needs its key, and a key its chain");
        goto done;
    }
    if (alpn.len > 255) {
        PyErr_SetString(PyExc_ValueError, "alpn: the list is longer than 255 bytes");
        goto done;
    }
    if (chain_object != Py_None) {
        if (PyObject_GetBuffer(chain_object, &chain, PyBUF_SIMPLE) < 0) goto done;
        /* Writable: the key is wiped as soon as OpenSSL has read it. */
        if (PyObject_GetBuffer(key_object, &key, PyBUF_WRITABLE) < 0) {
            PyErr_SetString(PyExc_TypeError, "key must be a bytearray (it is wiped once read)");
            goto done;
        }
    }
    s.alpn = alpn.buf;
    s.alpn_length = (size_t)alpn.len;
    const char *field = NULL, *reason = NULL;
    ctx = new_ctx(&s, &field, &reason);
    if (!ctx) {
        PyErr_Format(PyExc_ValueError, "%s: %s", field, reason);
        goto done;
    }
    if (chain.buf) {
        int ok;
        Py_BEGIN_ALLOW_THREADS /* a key check costs ~1 ms: other threads go on */
        ok = use_chain_and_key(ctx, chain.buf, (size_t)chain.len, key.buf, (size_t)key.len,
                               &reason);
        Py_END_ALLOW_THREADS
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "chain or key: %s", reason);
            goto done;
        }
    }
    ContextObject *self = (ContextObject *)type->tp_alloc(type, 0);
    if (!self) goto done;
    self->ctx = ctx;
    self->served = chain.buf != NULL;
    ctx = NULL;
    result = (PyObject *)self;
done:
    if (key.buf) {
        OPENSSL_cleanse(key.buf, (size_t)key.len);
        PyBuffer_Release(&key);
    }
    if (chain.buf) PyBuffer_Release(&chain);
    PyBuffer_Release(&alpn);
    SSL_CTX_free(ctx);
    return result;
}

static PyObject *Context_ciphers(ContextObject *self, PyObject *unused) {
    (void)unused;
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(self->ctx);
    int count = ciphers ? sk_SSL_CIPHER_num(ciphers) : 0;
    PyObject *result = PyList_New(count);
    for (int i = 0; result && i < count; i++) {
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(ciphers, i);
        int auth = SSL_CIPHER_get_auth_nid(cipher), encryption = SSL_CIPHER_get_cipher_nid(cipher);
        PyObject *entry = Py_BuildValue(
            "(sss)", SSL_CIPHER_get_name(cipher), auth == NID_undef ? "" : OBJ_nid2sn(auth),
            encryption == NID_undef ? "" : OBJ_nid2sn(encryption));
        if (!entry) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, entry);
    }
    return result;
}

static PyObject *Context_security_level(ContextObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLong(SSL_CTX_get_security_level(self->ctx));
}

static PyMethodDef Context_methods[] = {
    {"ciphers", (PyCFunction)Context_ciphers, METH_NOARGS,
     "ciphers() -> [(name, authentication, encryption)]: what a client may negotiate; an "
     "empty authentication or encryption name means none (anonymous, NULL)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Context_getset[] = {
    {"security_level", (getter)Context_security_level, NULL, "OpenSSL's security level.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ContextType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "certgate.tls._front.Context",
    .tp_basicsize = sizeof(ContextObject),
    .tp_dealloc = (destructor)Context_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A TLS server context built by the front end's OpenSSL.",
    .tp_methods = Context_methods,
    .tp_getset = Context_getset,
    .tp_new = Context_new,
};

/* The SSL_CTX of a served Context, with a reference of its own; NULL with an exception. */
static SSL_CTX *context_of(PyObject *context) {
    if (!PyObject_TypeCheck(context, &ContextType)) {
        PyErr_SetString(PyExc_TypeError, "context must be a certgate.tls._front.Context");
        return NULL;
    }
    ContextObject *c = (ContextObject *)context;
    if (!c->served) {
        PyErr_SetString(PyExc_ValueError, "this context has no certificate to serve");
        return NULL;
    }
    SSL_CTX_up_ref(c->ctx);
    return c->ctx;
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
    if (!check_timeouts(handshake_timeout, idle_timeout, send_timeout)) return NULL;
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

static PyObject *Front_set_ticket_keys(FrontObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    if (self->closed) return closed_error();
    Py_ssize_t count = PyList_GET_SIZE(list);
    if (count > TICKET_KEYS) {
        PyErr_Format(PyExc_ValueError, "at most %d ticket keys", TICKET_KEYS);
        return NULL;
    }
    ticket_key keys[TICKET_KEYS];
    for (Py_ssize_t i = 0; i < count; i++) {
        char *data;
        Py_ssize_t length;
        if (PyBytes_AsStringAndSize(PyList_GET_ITEM(list, i), &data, &length) < 0 ||
            length != (Py_ssize_t)sizeof(ticket_key)) {
            OPENSSL_cleanse(keys, sizeof keys);
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "a ticket key is %zu bytes", sizeof(ticket_key));
            return NULL;
        }
        memcpy(&keys[i], data, sizeof(ticket_key));
    }
    int status = post_with(self->f, C_SET_TICKET_KEYS, -1, NULL, NULL, keys, (int)count, NULL);
    OPENSSL_cleanse(keys, sizeof keys);
    if (status) return raise_status(status);
    Py_RETURN_NONE;
}

static PyObject *Front_set_challenges(FrontObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    if (self->closed) return closed_error();
    Py_ssize_t count = PyList_GET_SIZE(list);
    challenge_table table = {count ? calloc((size_t)count, sizeof(challenge)) : NULL, 0};
    if (count && !table.entries) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *name;
        Py_ssize_t length;
        PyObject *context;
        PyObject *entry = PyList_GET_ITEM(list, i);
        if (!PyTuple_Check(entry)) {
            PyErr_SetString(PyExc_TypeError, "each challenge is a (name, context) tuple");
            goto failed;
        }
        if (!PyArg_ParseTuple(entry, "s#O", &name, &length, &context)) goto failed;
        if (length < 1 || length > 255 || strlen(name) != (size_t)length) {
            PyErr_SetString(PyExc_ValueError, "a challenge's name is 1 to 255 bytes");
            goto failed;
        }
        SSL_CTX *ctx = context_of(context);
        if (!ctx) goto failed;
        memcpy(table.entries[i].name, name, (size_t)length);
        table.entries[i].ctx = ctx;
        table.count++;
    }
    int status = post_with(self->f, C_SET_CHALLENGES, -1, NULL, NULL, NULL, 0, &table);
    free_challenges(&table); /* the table replaced (or this one, when not taken) */
    if (status) return raise_status(status);
    Py_RETURN_NONE;
failed:
    free_challenges(&table);
    return NULL;
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

static PyObject *Front_handshakes_completed(FrontObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLong(atomic_load(&self->f->handshakes_completed));
}

static PyObject *Front_handshakes_failed(FrontObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLong(atomic_load(&self->f->handshakes_failed));
}

static PyObject *Front_set_timeouts(FrontObject *self, PyObject *args) {
    double handshake, idle, send;
    if (!PyArg_ParseTuple(args, "ddd", &handshake, &idle, &send)) return NULL;
    if (!check_timeouts(handshake, idle, send)) return NULL;
    front *f = self->f;
    f->handshake_timeout = handshake;
    f->idle_timeout = idle;
    f->send_timeout = send;
    atomic_store(&f->timeouts_changed, 1);
    wake(f);
    Py_RETURN_NONE;
}

static PyObject *Front_abort(FrontObject *self, PyObject *unused) {
    (void)unused;
    atomic_store(&self->f->abort_requested, 1);
    wake(self->f);
    Py_RETURN_NONE;
}

static PyObject *Front_failures(FrontObject *self, PyObject *unused) {
    (void)unused;
    PyObject *result = PyList_New(0);
    for (int kind = 0; result && kind < F_KINDS; kind++) {
        long count = atomic_exchange(&self->f->failures[kind], 0);
        if (!count) continue;
        PyObject *entry = Py_BuildValue("(sli)", failure_names[kind], count,
                                        atomic_load(&self->f->failure_errno[kind]));
        if (!entry || PyList_Append(result, entry) < 0) Py_CLEAR(result);
        Py_XDECREF(entry);
    }
    return result;
}

static PyMethodDef Front_methods[] = {
    {"listen", (PyCFunction)Front_listen, METH_VARARGS,
     "listen(fd, context) -> id: accept on a duplicate of the listening socket fd."},
    {"set_context", (PyCFunction)Front_set_context, METH_VARARGS,
     "set_context(id, context): connections accepted from now on get this context."},
    {"set_ticket_keys", (PyCFunction)Front_set_ticket_keys, METH_VARARGS,
     "set_ticket_keys([key, ...]): TLS 1.3 session ticket keys (80 bytes: name, AES, HMAC); "
     "the first makes new tickets, all are accepted."},
    {"set_challenges", (PyCFunction)Front_set_challenges, METH_VARARGS,
     "set_challenges([(name, context), ...]): TLS-ALPN-01 (RFC 8737): a client offering "
     "acme-tls/1 with that name as SNI gets the context (its challenge certificate), the "
     "connection closed once the handshake is done; one offering it for another name is "
     "refused. Replaces the previous list."},
    {"unlisten", (PyCFunction)Front_unlisten, METH_VARARGS,
     "unlisten(id): stop accepting on that listener; its connections go on."},
    {"close", (PyCFunction)Front_close, METH_NOARGS,
     "close(): stop every listener, end the handshakes in flight and connections not yet taken."},
    {"take", (PyCFunction)Front_take, METH_NOARGS,
     "take() -> [(fd, listener id, peer, local, version, cipher)]: connections handed off."},
    {"fileno", (PyCFunction)Front_fileno, METH_NOARGS,
     "fileno() -> the eventfd readable when take() has connections (or failures() has some)."},
    {"set_timeouts", (PyCFunction)Front_set_timeouts, METH_VARARGS,
     "set_timeouts(handshake, idle, send): for the phases that start from now on."},
    {"abort", (PyCFunction)Front_abort, METH_NOARGS,
     "abort(): end every connection at once (returns before they are ended)."},
    {"failures", (PyCFunction)Front_failures, METH_NOARGS,
     "failures() -> [(call, count, errno)]: the system calls that failed for want of "
     "descriptors or memory since the last call (accept, socketpair), the last errno of each."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Front_getset[] = {
    {"in_flight", (getter)Front_in_flight, NULL, "Handshakes accepted and not yet ended.", NULL},
    {"connections", (getter)Front_connections, NULL, "Every connection the front end holds.",
     NULL},
    {"handshakes_completed", (getter)Front_handshakes_completed, NULL,
     "Handshakes completed since the front end started.", NULL},
    {"handshakes_failed", (getter)Front_handshakes_failed, NULL,
     "Handshakes that ended without completing (refused, timed out, cut) since it started.",
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
    if (ssl_front_index < 0) ssl_front_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (ctx_alpn_index < 0)
        ctx_alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_alpn);
    if (!ticket_cipher) ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (ssl_front_index < 0 || ctx_alpn_index < 0 || !ticket_cipher) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no room for the front end's data");
        return NULL;
    }
    if (PyType_Ready(&FrontType) < 0 || PyType_Ready(&ContextType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&FrontType);
    if (PyModule_AddObject(m, "Front", (PyObject *)&FrontType) < 0) {
        Py_DECREF(&FrontType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&ContextType);
    if (PyModule_AddObject(m, "Context", (PyObject *)&ContextType) < 0) {
        Py_DECREF(&ContextType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "OPENSSL_VERSION", OpenSSL_version(OPENSSL_VERSION)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
