/* stub */
#pragma once
#include <stddef.h>
