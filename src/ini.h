/* stub */
#pragma once
