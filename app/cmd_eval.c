/* cmd_eval.c — placeholder while the command is written. */
#include "app/app.h"

int app_cmd_eval_retrieval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_error("not implemented yet");
}
