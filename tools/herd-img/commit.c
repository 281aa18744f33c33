/*
 * herd-img commit, rebase and convert.
 */
#include "img.h"

int img_commit(int argc, char **argv)
{
    img_error("commit: not implemented yet");
    return 1;
}

int img_rebase(int argc, char **argv)
{
    img_error("rebase: not implemented yet");
    return 1;
}

int img_convert(int argc, char **argv)
{
    img_error("convert: not implemented yet");
    return 1;
}
