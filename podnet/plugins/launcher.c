/*
 * podnet's CNI launcher: the executable a runtime runs once per pod, in front of the warm
 * node agent. It forwards the call (CNI_* and PODNET_* variables, PATH, stdin) over the
 * agent's unix socket in podnet._wire's protocol and prints the agent's stdout with its
 * exit code, byte for byte. It decides nothing: every CNI decision stays in Python.
 *
 * Its per-plugin settings are appended to this very file by `podnet install-cni`
 * (podnet/plugins/_launcher.py), read back from /proc/self/exe's tail:
 *
 *     <ELF image> | payload | u32 payload length (big-endian) | "podnetL1"
 *     payload = plugin type NUL agent socket NUL fallback argv[0] NUL argv[1] NUL ...
 *
 * Why a trailer and not a sidecar file: one file per plugin name, replaced by one atomic
 * rename, so a runtime never runs a binary with another install's settings; reading it
 * costs an open and two preads, no parsing of a config format, no path to look up.
 *
 * When no agent accepts the connection, it execs the fallback argv (the venv's
 * interpreter running the plugin in-process) with stdin still unread, adding one argument:
 * why the agent was not used (empty when no agent is configured or CNI_COMMAND is unset).
 * An agent that accepted but did not answer gets CNI code 11, as podnet._thin answers.
 *
 * libc only; built with -Wall -Wextra -Werror, statically where the toolchain allows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define TRAILER_MAGIC "podnetL1"
#define MAGIC_SIZE 8
#define TRAILER_SIZE (4 + MAGIC_SIZE)
#define MAX_PAYLOAD (64 * 1024)
#define MAX_ARGS 64
#define MAX_FIELD (16u * 1024 * 1024)  /* podnet._wire.MAX_ANSWER */
#define TIMEOUT_SECONDS 120            /* every socket wait, as podnet._thin's default */
#define CODE_INTERNAL 999

struct settings {
    const char *plugin_type;
    const char *agent_socket;
    char *argv[MAX_ARGS + 2];  /* fallback argv, room for the reason and the NULL */
    int argc;
};

struct buffer {
    char *data;
    size_t len;
    size_t cap;
};

static void write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;  /* nobody is reading our stdout: the exit code still tells */
        }
        data += n;
        len -= (size_t)n;
    }
}

/* A CNI error of our own (the launcher is broken or misinstalled): JSON on stdout, exit 1. */
static void fail(int code, const char *msg, const char *details) {
    char out[4096];
    size_t len = (size_t)snprintf(out, sizeof out, "{\"cniVersion\": \"1.1.0\", \"code\": %d, "
                                  "\"msg\": \"%s\", \"details\": \"", code, msg);
    for (const char *c = details; *c && len < sizeof out - 8; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '"' || ch == '\\') {
            out[len++] = '\\';
            out[len++] = (char)ch;
        } else if (ch < 0x20) {
            len += (size_t)snprintf(out + len, sizeof out - len, "\\u%04x", ch);
        } else {
            out[len++] = (char)ch;
        }
    }
    memcpy(out + len, "\"}\n", 3);
    write_all(1, out, len + 3);
    _exit(1);
}

static void append(struct buffer *buf, const char *data, size_t len) {
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + len)
            cap *= 2;
        char *grown = realloc(buf->data, cap);
        if (!grown)
            fail(CODE_INTERNAL, "podnet launcher: out of memory", "");
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
}

static int pread_exact(int fd, char *into, size_t len, off_t at) {
    while (len) {
        ssize_t n = pread(fd, into, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        into += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

static void load_settings(struct settings *s) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st;
    char trailer[TRAILER_SIZE];
    if (fd < 0 || fstat(fd, &st) < 0)
        fail(CODE_INTERNAL, "podnet launcher: cannot read its own settings", strerror(errno));
    if (st.st_size < TRAILER_SIZE
        || pread_exact(fd, trailer, TRAILER_SIZE, st.st_size - TRAILER_SIZE) < 0
        || memcmp(trailer + 4, TRAILER_MAGIC, MAGIC_SIZE) != 0)
        fail(CODE_INTERNAL, "podnet launcher: no settings appended",
             "reinstall with podnet install-cni");
    uint32_t size = ((uint32_t)(unsigned char)trailer[0] << 24)
                    | ((uint32_t)(unsigned char)trailer[1] << 16)
                    | ((uint32_t)(unsigned char)trailer[2] << 8) | (unsigned char)trailer[3];
    char *payload = malloc((size_t)size + 1);
    if (size > MAX_PAYLOAD || size > st.st_size - TRAILER_SIZE || !payload
        || pread_exact(fd, payload, size, st.st_size - TRAILER_SIZE - size) < 0)
        fail(CODE_INTERNAL, "podnet launcher: settings unreadable",
             "reinstall with podnet install-cni");
    close(fd);
    payload[size] = '\0';
    /* NUL-terminated fields: type, socket, then the fallback argv */
    const char *fields[MAX_ARGS + 2];
    int count = 0;
    for (size_t at = 0; at < size && count < MAX_ARGS + 2; at += strlen(payload + at) + 1)
        fields[count++] = payload + at;
    if (count < 3)
        fail(CODE_INTERNAL, "podnet launcher: settings incomplete",
             "reinstall with podnet install-cni");
    s->plugin_type = fields[0];
    s->agent_socket = fields[1];
    s->argc = 0;
    for (int i = 2; i < count; i++)
        s->argv[s->argc++] = (char *)fields[i];
}

/* Run the plugin here instead, through the Python fallback; stdin is still unread. */
static void fall_back(struct settings *s, const char *reason) {
    s->argv[s->argc] = (char *)reason;
    s->argv[s->argc + 1] = NULL;
    execv(s->argv[0], s->argv);
    char details[1024];
    snprintf(details, sizeof details, "%s: %s", s->argv[0], strerror(errno));
    fail(CODE_INTERNAL, "podnet launcher: cannot start the in-process fallback", details);
}

/* The agent accepted the request but did not answer: the request may have run, so it is
 * not run again here (it could allocate twice); the runtime is told to retry instead.
 * Byte for byte podnet._thin's _AGENT_LOST, with the same wording of the cause. */
static void agent_lost(const char *why) {
    static const char head[] = "{\"cniVersion\": \"1.1.0\", \"code\": 11, \"msg\": \"the podnet "
                               "agent accepted the request but did not answer\", \"details\": \"";
    struct buffer out = {0};
    append(&out, head, sizeof head - 1);
    for (const char *c = why; *c; c++)
        append(&out, *c == '"' ? "'" : c, 1);
    append(&out, "\"}\n", 3);
    write_all(1, out.data, out.len);
    _exit(1);
}

/* As Python words an OSError (str(exc)), or a socket timeout. */
static void agent_lost_errno(int err) {
    char why[256];
    if (err == EAGAIN || err == EWOULDBLOCK)
        snprintf(why, sizeof why, "timed out");
    else
        snprintf(why, sizeof why, "[Errno %d] %s", err, strerror(err));
    agent_lost(why);
}

static void recv_exact(int fd, char *into, size_t len) {
    while (len) {
        ssize_t n = recv(fd, into, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            agent_lost_errno(errno);
        if (n == 0)
            agent_lost("connection closed mid-message");
        into += n;
        len -= (size_t)n;
    }
}

static uint32_t recv_u32(int fd) {
    unsigned char b[4];
    recv_exact(fd, (char *)b, 4);
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static void put_u32(unsigned char *into, size_t value) {
    into[0] = (unsigned char)(value >> 24);
    into[1] = (unsigned char)(value >> 16);
    into[2] = (unsigned char)(value >> 8);
    into[3] = (unsigned char)value;
}

static int forwarded(const char *entry) {
    return strncmp(entry, "CNI_", 4) == 0 || strncmp(entry, "PODNET_", 7) == 0;
}

/* The first entry of a name wins, as in Python's os.environ. */
static int seen_before(char **entry) {
    size_t key_len = (size_t)(strchr(*entry, '=') - *entry);
    for (char **prev = environ; prev != entry; prev++)
        if (strncmp(*prev, *entry, key_len + 1) == 0)
            return 1;
    return 0;
}

/* CNI_* and PODNET_* variables, then PATH (delegates and nft are looked up in it):
 * NUL-separated NAME=value, as podnet._thin._forwarded_environ encodes them. */
static void forwarded_environ(struct buffer *env) {
    for (char **entry = environ; *entry; entry++) {
        if (!forwarded(*entry) || !strchr(*entry, '=') || seen_before(entry))
            continue;
        append(env, *entry, strlen(*entry));
        append(env, "", 1);
    }
    const char *path = getenv("PATH");
    append(env, "PATH=", 5);
    append(env, path ? path : "", path ? strlen(path) : 0);
}

static void read_stdin(struct buffer *in) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EBADF)
            fail(5, "podnet launcher: cannot read stdin", strerror(errno));
        if (n <= 0)
            return;
        append(in, chunk, (size_t)n);
    }
}

static void send_request(int fd, const struct settings *s, struct buffer *env,
                         struct buffer *in) {
    unsigned char type_len[4], env_len[4], in_len[4];
    put_u32(type_len, strlen(s->plugin_type));
    put_u32(env_len, env->len);
    put_u32(in_len, in->len);
    struct iovec iov[] = {
        {"PNC1", 4},
        {type_len, 4},
        {(char *)s->plugin_type, strlen(s->plugin_type)},
        {env_len, 4},
        {env->data, env->len},
        {in_len, 4},
        {in->data, in->len},
    };
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = sizeof iov / sizeof iov[0]};
    while (msg.msg_iovlen) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            agent_lost_errno(errno);
        while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    if (shutdown(fd, SHUT_WR) < 0)
        agent_lost_errno(errno);
}

int main(void) {
    struct settings s;
    load_settings(&s);
    const char *command = getenv("CNI_COMMAND");
    if (!command || !*command || !*s.agent_socket)
        fall_back(&s, "");

    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t path_len = strlen(s.agent_socket);
    if (path_len > sizeof addr.sun_path)
        fall_back(&s, "AF_UNIX path too long");  /* Python's words for it */
    memcpy(addr.sun_path, s.agent_socket, path_len);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fall_back(&s, strerror(errno));
    struct timeval timeout = {.tv_sec = TIMEOUT_SECONDS};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    while (connect(fd, (struct sockaddr *)&addr, addr_len) < 0) {
        if (errno == EINTR)
            continue;
        fall_back(&s, errno == EAGAIN || errno == EINPROGRESS ? "timed out" : strerror(errno));
    }

    /* Only now, with an agent to hand it to, is stdin read (VERSION sends none). */
    struct buffer env = {0}, in = {0};
    forwarded_environ(&env);
    if (strcmp(command, "VERSION") != 0)
        read_stdin(&in);
    send_request(fd, &s, &env, &in);

    uint32_t code = recv_u32(fd);
    uint32_t size = recv_u32(fd);
    if (size > MAX_FIELD) {
        char why[64];
        snprintf(why, sizeof why, "field of %u bytes is too large", size);
        agent_lost(why);
    }
    char *out = malloc(size ? size : 1);
    if (!out)
        fail(CODE_INTERNAL, "podnet launcher: out of memory", "");
    recv_exact(fd, out, size);
    write_all(1, out, size);
    _exit((int)code);
}
