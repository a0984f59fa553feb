/* Tests of agent/sender.c against real UDP sockets on loopback. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "pt/log.h"

#include "sender.h"

/* A UDP socket bound to 127.0.0.1:port (0: any free port); *port is set. */
static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Receives one datagram within a second; returns its length or -1. */
static ssize_t receive(int fd, char *buf, size_t cap)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return -1;
    return recv(fd, buf, cap, 0);
}

static void test_init(void **state)
{
    struct agent_sender s;
    assert_int_equal(agent_sender_init(&s, "127.0.0.1:8094"), 0);
    assert_string_equal(s.host, "127.0.0.1");
    assert_string_equal(s.port, "8094");
    assert_int_equal(s.fd, -1); /* no network touched yet */
    agent_sender_close(&s);
    assert_int_equal(agent_sender_init(&s, "[::1]:8094"), 0);
    assert_string_equal(s.host, "::1");
    const char *bad[] = {"127.0.0.1",       ":8094",    "127.0.0.1:0",
                         "127.0.0.1:65536", "::1:8094", "host:port"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (agent_sender_init(&s, bad[i]) != -EINVAL) fail_msg("\"%s\" accepted", bad[i]);
}

static void test_send(void **state)
{
    uint16_t port = 0;
    int l = listener(&port);
    char target[32], buf[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);

    struct agent_sender s;
    assert_int_equal(agent_sender_init(&s, target), 0);
    assert_int_equal(agent_sender_send(&s, "frame one", 9), 0);
    assert_int_equal(agent_sender_send(&s, "frame two", 9), 0);
    assert_string_equal(s.addr, target);
    assert_int_equal(receive(l, buf, sizeof buf), 9);
    assert_memory_equal(buf, "frame one", 9);
    assert_int_equal(receive(l, buf, sizeof buf), 9);
    assert_memory_equal(buf, "frame two", 9);
    agent_sender_close(&s);
    close(l);
}

static void test_collector_down_then_up(void **state)
{
    /* Find a free port, and leave it closed. */
    uint16_t port = 0;
    close(listener(&port));
    char target[32], buf[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);

    struct agent_sender s;
    assert_int_equal(agent_sender_init(&s, target), 0);
    /* The kernel reports the port unreachable on a later send (the ICMP
     * answer to an earlier datagram); the sender counts it, logs it, and
     * still sends the frame in hand. */
    for (int i = 0; i < 50 && s.refused == 0; i++) {
        assert_int_equal(agent_sender_send(&s, "x", 1), 0);
        usleep(10000);
    }
    assert_true(s.refused > 0);

    /* The collector comes back on the same port: the very next frame
     * arrives, although the socket still had the old refusal pending. */
    int l = listener(&port);
    assert_int_equal(agent_sender_send(&s, "again", 5), 0);
    assert_int_equal(receive(l, buf, sizeof buf), 5);
    assert_memory_equal(buf, "again", 5);
    agent_sender_close(&s);
    close(l);
}

int main(void)
{
    pt_log_set_level(PT_LOG_ERROR); /* the expected warnings are not news */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_collector_down_then_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
