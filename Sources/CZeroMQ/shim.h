#include <zmq.h>
// The bus loop wakes its poll through an eventfd.
#include <sys/eventfd.h>
