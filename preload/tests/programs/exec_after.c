/* Allocates 200 MiB (209715200 B) and keeps it, then execs the program its arguments name (execv): the heap before
 * the exec is this process's too. No stdio: nothing else allocates. */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char *block = malloc(209715200);
    if (block == NULL || argc < 2) return 2;
    execv(argv[1], argv + 1);
    return 3;
}
