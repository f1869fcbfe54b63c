/* cmd_chat.c — `mrag chat`: interactive questions with libedit. */
#include "app/app.h"

int app_cmd_chat(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_error("chat: not yet");
}
