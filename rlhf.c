/* rlhf — command-line front end (being written). */
#include <stdio.h>
int main(void) { puts("rlhf"); return 0; }
