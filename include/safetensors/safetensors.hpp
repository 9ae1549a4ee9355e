// safetensors-hpp: the umbrella header. Includes every public header except the optional
// integrations (cuda.hpp, dlpack.hpp), which need extra dependencies.
#pragma once

#include "version.hpp"
#include "error.hpp"
#include "span.hpp"
#include "dtype.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "header.hpp"
#include "view.hpp"
#include "file.hpp"
#include "tensor.hpp"
#include "load.hpp"
#include "slice.hpp"
#include "write_options.hpp"
#include "tensor_ref.hpp"
#include "writer.hpp"
#include "stream_writer.hpp"
#include "convert.hpp"
#include "sharded.hpp"
#include "sharded_writer.hpp"
