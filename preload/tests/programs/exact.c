/* Every allocation function the preload library replaces, with sizes whose figures are known in advance:
 * peak 15269 B, total 16833 B in 8 blocks, 777 B still live at the end. No stdio: nothing else allocates. */
#include <malloc.h>
#include <stdlib.h>

int main(void) {
    char *a = malloc(1000);                    /* live 1000 */
    char *b = calloc(10, 100);                 /* live 2000 */
    a = realloc(a, 5000);                      /* live 6000: one more block of 5000 */
    void *c;
    if (posix_memalign(&c, 64, 300) != 0) return 1; /* live 6300 */
    void *d = aligned_alloc(4096, 8192);       /* live 14492 */
    void *e = memalign(128, 777);              /* live 15269: the peak */
    free(NULL);                                /* nothing */
    b = realloc(b, 500);                       /* live 14769 */
    free(a);
    free(b);
    free(c);
    free(d);                                   /* live 777 */
    void *f = realloc(NULL, 64);               /* live 841: realloc of NULL is a malloc */
    f = realloc(f, 0);                         /* live 777: realloc to 0 frees */
    return e == NULL || f != NULL;             /* e is kept to the end */
}
