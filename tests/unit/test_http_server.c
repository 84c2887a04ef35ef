/*
 * test_http_server.c — net/http_server: the libmicrohttpd glue the admin endpoint, the
 * control-plane API and the registry share.
 *
 *   - a daemon on 127.0.0.1:0 reports the port it bound, and answers there with the status,
 *     Content-Type, extra headers and body that kp_http_reply queued (a real socket);
 *   - the options array reaches libmicrohttpd (a connection limit of 1 is kept);
 *   - bad listeners fail with one message naming the setting: not host:port, a name that
 *     does not resolve, a port already taken.
 */
#include "unit.h"

#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_len, (void)state;
    const char *headers[] = {"X-Kpool", "yes", "Cache-Control", "no-store", NULL};
    char *body = strdup(url);
    return kp_http_reply(conn, 418, "text/plain", body, strlen(body), MHD_RESPMEM_MUST_FREE,
                         headers);
}

/* GET path from 127.0.0.1:port; the whole answer (headers and body), malloc'd. */
static char *http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    ssize_t r;
    while ((r = read(fd, out + len, cap - len - 1)) > 0) len += (size_t)r;
    out[len] = 0;
    close(fd);
    return out;
}

static void test_listen_and_reply(void **state)
{
    (void)state;
    const struct MHD_OptionItem opts[] = {{MHD_OPTION_CONNECTION_TIMEOUT, 5, NULL},
                                          {MHD_OPTION_END, 0, NULL}};
    kp_http_listen_t l = {
        .what = "test.listener", .hostport = "127.0.0.1:0", .handler = handle, .options = opts};
    char host[64], err[256];
    int port = 0;
    struct MHD_Daemon *d = kp_http_listen(&l, &port, host, sizeof(host), err, sizeof(err));
    assert_non_null(d);
    assert_true(port > 0);
    assert_string_equal(host, "127.0.0.1");
    char *got = http_get(port, "/hello");
    assert_non_null(strstr(got, " 418 "));
    assert_non_null(strstr(got, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(got, "X-Kpool: yes\r\n"));
    assert_non_null(strstr(got, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(got, "\r\n\r\n/hello"));
    free(got);

    /* the same port again: taken */
    char again[64];
    snprintf(again, sizeof(again), "127.0.0.1:%d", port);
    kp_http_listen_t l2 = l;
    l2.hostport = again;
    int port2 = 0;
    assert_null(kp_http_listen(&l2, &port2, NULL, 0, err, sizeof(err)));
    char want[128];
    snprintf(want, sizeof(want), "test.listener: cannot listen on %s (in use?)", again);
    assert_string_equal(err, want);
    MHD_stop_daemon(d);
}

static void test_bad_listeners(void **state)
{
    (void)state;
    kp_http_listen_t l = {.what = "admin.listener", .hostport = "nonsense", .handler = handle};
    char err[256];
    int port = 0;
    assert_null(kp_http_listen(&l, &port, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "admin.listener: 'nonsense' is not host:port");
    l.hostport = "no-such-host.invalid:1";
    assert_null(kp_http_listen(&l, &port, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "admin.listener: cannot resolve no-such-host.invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_and_reply),
        cmocka_unit_test(test_bad_listeners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
