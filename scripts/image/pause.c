/* The pod sandbox's process (containerd's sandbox image, scripts/image.sh): it holds the
 * pod's namespaces open and does nothing else. As PID 1 of a pod that shares its PID
 * namespace it also reaps orphans, so zombies do not pile up. SIGINT or SIGTERM end it
 * with status 0. Built with `gcc -static -Os`: the image holds this file alone. */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  /* One SIGCHLD may stand for several exits; collect all that are ready. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int handle(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

int main(void) {
  if (handle(SIGINT, on_stop) != 0 || handle(SIGTERM, on_stop) != 0 || handle(SIGCHLD, on_child) != 0) {
    static const char msg[] = "pause: sigaction failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    return 1;
  }
  /* pause() returns after each handled signal; only SIGINT/SIGTERM end the process. */
  for (;;) pause();
}
