/* Four threads churn and hold blocks while the main thread forks a child that allocates 64 MiB: the preload
 * library counts every thread of this process and nothing of the child's. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 4, BLOCKS = 2000 };
static pthread_barrier_t held;

static void *work(void *arg) {
    size_t seed = (size_t)arg;
    void *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        size_t size = 16 + (seed * 7919 + (size_t)i * 104729) % 8000;
        blocks[i] = malloc(size);
        memset(blocks[i], 1, size);
        if (i % 3 == 0) blocks[i] = realloc(blocks[i], size * 2);
        void *scratch = calloc(1, 100 + (size_t)i % 50);
        free(scratch);
    }
    pthread_barrier_wait(&held);
    for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    pthread_barrier_init(&held, NULL, THREADS + 1);
    for (size_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, work, (void *)t);
    pid_t child = fork();
    if (child == 0) {
        char *big = malloc(64 << 20);
        memset(big, 1, 64 << 20);
        _exit(big[12345] == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    pthread_barrier_wait(&held);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
