#include "berth_spawn.h"
