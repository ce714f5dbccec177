/* Umbrella header of the CBerthProto module: libprotobuf-c and the structs generated from Proto/berth.proto.
 * Imported only by BerthWire. Regenerate berth.pb-c.{c,h} with scripts/generate-proto.sh. */
#ifndef CBERTHPROTO_H
#define CBERTHPROTO_H

#include <protobuf-c/protobuf-c.h>
#include "berth.pb-c.h"

#endif
