/*
 * test_ipc_socket.c - the node-local fd-passing socket of the cuda_ipc
 * transport, without a GPU: a forked "rank" passes pipe fds to another over
 * the abstract namespace and over a shared directory (the pods' case); fds
 * arrive out of order and are matched by token and sender (another rank's
 * datagram with the same token waits in the mailbox); names depend on group and rank only (no pid);
 * a missing peer fails with the remedy; a second bind of one name is refused.
 */
#include <signal.h>
#include <sys/wait.h>

#include "kccl_test.h"
#include "transport/cuda_ipc/ipc_socket.h"
#include "transport/transport.h"

static void pass_fds(const char *dir)
{
    const uint64_t group = 0x1234abcdull ^ (uint64_t)getpid();
    kccl_ipc_sock_t rx;
    assert_int_equal(kccl_ipc_sock_open(&rx, dir, group, 1), KCCL_OK);
    int p1[2], p2[2];
    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    pid_t pid = fork();
    if (pid == 0) {
        kccl_ipc_sock_t tx, other;
        int64_t dl = kccl_tp_now_ms() + 2000;
        if (kccl_ipc_sock_open(&tx, dir, group, 0) != KCCL_OK)
            _exit(2);
        /* rank 5 sends first with the same token: rank 1 waits for rank 0's, not this one */
        if (kccl_ipc_sock_open(&other, dir, group, 5) != KCCL_OK)
            _exit(3);
        int rc = kccl_ipc_sock_send_fd(&other, 1, 11, p2[1], dl) != KCCL_OK;
        kccl_ipc_sock_close(&other);
        rc |= kccl_ipc_sock_send_fd(&tx, 1, 22, p2[1], dl) != KCCL_OK; /* out of order */
        rc |= kccl_ipc_sock_send_fd(&tx, 1, 11, p1[1], dl) != KCCL_OK;
        kccl_ipc_sock_close(&tx);
        _exit(rc);
    }
    close(p1[1]);
    close(p2[1]);
    fcntl(p1[0], F_SETFL, O_NONBLOCK); /* a wrong fd must fail the test, not hang it */
    fcntl(p2[0], F_SETFL, O_NONBLOCK);
    int fd11 = -1, fd22 = -1, st;
    assert_int_equal(kccl_ipc_sock_recv_fd(&rx, 0, 11, &fd11, kccl_tp_now_ms() + 3000), KCCL_OK);
    assert_int_equal(kccl_ipc_sock_recv_fd(&rx, 0, 22, &fd22, kccl_tp_now_ms() + 3000), KCCL_OK);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the received fds are the pipes' write ends: writing reaches the read ends here */
    assert_int_equal(write(fd11, "a", 1), 1);
    assert_int_equal(write(fd22, "b", 1), 1);
    char c;
    assert_int_equal(read(p1[0], &c, 1), 1);
    assert_int_equal(c, 'a');
    assert_int_equal(read(p2[0], &c, 1), 1);
    assert_int_equal(c, 'b');
    /* nothing more: a wait for an unknown token times out */
    int fd;
    assert_int_equal(kccl_ipc_sock_recv_fd(&rx, 0, 33, &fd, kccl_tp_now_ms() + 100),
                     KCCL_ERR_TIMED_OUT);
    /* the same name cannot be bound twice (abstract) or is replaced (directory) */
    kccl_ipc_sock_t again;
    kccl_status_t st2 = kccl_ipc_sock_open(&again, dir, group, 1);
    if (dir[0] == '\0')
        assert_int_equal(st2, KCCL_ERR_ADDR_IN_USE);
    else
        kccl_ipc_sock_close(&again);
    close(fd11);
    close(fd22);
    close(p1[0]);
    close(p2[0]);
    kccl_ipc_sock_close(&rx);
}

static void test_abstract_namespace(void **state)
{
    (void)state;
    pass_fds("");
}

static void test_shared_directory(void **state)
{
    (void)state;
    /* Unix socket paths are limited to 108 bytes: a short directory, not
     * $TMPDIR (which lives deep in the build tree). */
    char dir[] = "/tmp/kccl-ipc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pass_fds(dir);
    rmdir(dir);
}

static void test_names_and_errors(void **state)
{
    (void)state;
    struct sockaddr_un a, b;
    socklen_t la = kccl_ipc_sock_name("", 0xabcull, 3, &a);
    socklen_t lb = kccl_ipc_sock_name("", 0xabcull, 3, &b);
    assert_true(la > 0 && la == lb && memcmp(&a, &b, la) == 0); /* no pid in the name */
    assert_int_equal(a.sun_path[0], '\0');
    assert_string_equal(a.sun_path + 1, "kccl-0000000000000abc-3");
    assert_true(kccl_ipc_sock_name("/var/run/kccl", 0xabcull, 3, &a) > 0);
    assert_string_equal(a.sun_path, "/var/run/kccl/kccl-0000000000000abc-3.sock");
    char longdir[200];
    memset(longdir, 'x', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    assert_int_equal(kccl_ipc_sock_name(longdir, 1, 1, &a), 0);
    kccl_ipc_sock_t s;
    assert_int_equal(kccl_ipc_sock_open(&s, longdir, 1, 1), KCCL_ERR_CONFIG);
    /* sending to a rank nobody bound fails at the deadline, saying what to check */
    assert_int_equal(kccl_ipc_sock_open(&s, "", 0x77ull ^ (uint64_t)getpid(), 0), KCCL_OK);
    int64_t t0 = kccl_tp_now_ms();
    assert_int_equal(kccl_ipc_sock_send_fd(&s, 9, 1, 0, t0 + 100), KCCL_ERR_REMOTE);
    assert_true(kccl_tp_now_ms() - t0 >= 100);
    assert_non_null(strstr(kccl_last_error(), "KCCL_IPC_SOCKET_DIR"));
    kccl_ipc_sock_close(&s);
}

int main(void)
{
    setenv("KCCL_LOG_LEVEL", "none", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abstract_namespace),
        cmocka_unit_test(test_shared_directory),
        cmocka_unit_test(test_names_and_errors),
    };
    return cmocka_run_group_tests_name("ipc_socket", tests, NULL, NULL);
}
