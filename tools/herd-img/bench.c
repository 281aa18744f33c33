/*
 * herd-img bench: qemu-img bench's options and output on the aio interface.
 */
#include "img.h"

int img_bench(int argc, char **argv)
{
    img_error("bench: not implemented yet");
    return 1;
}
