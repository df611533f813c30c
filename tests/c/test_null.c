/* test_null.c — NULL where a context or handle is expected: never
** dereferenced, answered the one documented way (ctx.h, "conventions"). */
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"

TEST(null_everywhere) {
  int64_t d;
  void *v;
  size_t w;
  ctx_t *out;
  /* int results: CTX_EINVAL */
  ASSERT_EQ(ctx_done(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_deadline(NULL, &d), CTX_EINVAL);
  ASSERT_EQ(ctx_value(NULL, "k", NULL, NULL, &v), CTX_EINVAL);
  ASSERT_EQ(ctx_cancel(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_cancel_cause(NULL, NULL, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_with_cancel(NULL, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_with_deadline(NULL, 0, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_with_deadline_cause(NULL, 0, NULL, NULL, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_with_timeout(NULL, 0, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_with_timeout_cause(NULL, 0, NULL, NULL, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_with_value(NULL, "k", NULL, NULL, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_without_cancel(NULL, &out), CTX_EINVAL);
  ASSERT_EQ(ctx_expire(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_wait(NULL, 0), CTX_EINVAL);
  ASSERT_EQ(ctx_wait_any(NULL, 1, NULL, 0, 0, &w), CTX_EINVAL);
  ASSERT_EQ(ctx_fd(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_after_func(NULL, test_nop, NULL, NULL, NULL, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_after_stop(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_visit(NULL, NULL, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_remaining(NULL), CTX_EINVAL);
  /* pointers: NULL; enums: their INVALID member; void: nothing */
  ASSERT(ctx_cause(NULL) == NULL);
  ASSERT(ctx_parent(NULL) == NULL);
  ASSERT(ctx_ref(NULL) == NULL);
  ASSERT(ctx_string(NULL, NULL, NULL) == NULL);
  ASSERT_EQ(ctx_err(NULL), CTX_ERR_INVALID);
  ASSERT_EQ(ctx_kind(NULL), CTX_KIND_INVALID);
  ASSERT_EQ(ctx_num_children(NULL), 0);
  ctx_unref(NULL);
  ctx_settle(NULL);
  ctx_after_free(NULL);
  ctx_after_run(NULL);
  ctx_after_discard(NULL);
  ASSERT_STR(ctx_version(), CTX_VERSION_STRING);
  ASSERT_STR(ctx_err_string(CTX_ERR_INVALID), "");
}

/* One ctx_unref too many: a debug build (the tests') names it and aborts. */
TEST(debug_build_catches_a_release_too_many) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    ctx_t *c;
    freopen("/dev/null", "w", stderr);   /* ASan's report is long */
    ctx_set_allocator(NULL, NULL);   /* plain malloc: the poison stays put */
    if (ctx_with_cancel(ctx_background(), &c) != CTX_OK) _exit(1);
    ctx_t *keep;  /* another block on top, so the freed one is not reused */
    ctx_with_cancel(ctx_background(), &keep);
    ctx_unref(c);
    ctx_unref(c);
    _exit(0);
  }
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  /* plain and valgrind: our abort; ASan: its own report first */
  ASSERT(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
}
