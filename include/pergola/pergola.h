/* Pergola: the whole public API. Include this one header. */
#ifndef PERGOLA_H
#define PERGOLA_H

#include "pergola/client.h"
#include "pergola/error.h"

#endif
