// retort's CUDA kernels: the layers, the optimizer updates and the helpers the GPU model runner
// (src/cuda/model.rs) needs. Compiled to PTX by build.rs with nvcc when the `cuda` feature is on.
// Layouts are PyTorch's: activations [n, c, h, w] row-major. Every kernel is a grid-stride loop
// over its outputs (gather form, no atomics) except the per-channel reductions, which run one
// block per channel and accumulate in double like the CPU code.

// 32-bit indices (the host refuses launches over 2^31 elements): 64-bit division is several
// times slower on the GPU, and the index arithmetic of im2col/col2im is mostly divisions.
#define LOOP(i, n) for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)(n); i += blockDim.x * gridDim.x)

// y += x
extern "C" __global__ void add_into(float* y, const float* x, size_t n) {
    LOOP(i, n) y[i] += x[i];
}

// y = a + b
extern "C" __global__ void add(const float* a, const float* b, float* y, size_t n) {
    LOOP(i, n) y[i] = a[i] + b[i];
}

// y = a * b (dropout masks)
extern "C" __global__ void mul(const float* a, const float* b, float* y, size_t n) {
    LOOP(i, n) y[i] = a[i] * b[i];
}

extern "C" __global__ void relu_fwd(const float* x, float* y, size_t n) {
    LOOP(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dy where the output was positive
extern "C" __global__ void relu_bwd(const float* y, const float* dy, float* dx, size_t n) {
    LOOP(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// y[o, ch, i] += b[ch] for y [outer, c, inner]
extern "C" __global__ void add_bias(float* y, const float* b, size_t outer, size_t c, size_t inner) {
    LOOP(i, outer * c * inner) y[i] += b[(i / (unsigned)inner) % (unsigned)c];
}

// [a, b, inner] -> [b, a, inner]
extern "C" __global__ void swap01(const float* x, float* y, size_t a, size_t b, size_t inner) {
    LOOP(i, a * b * inner) {
        unsigned k = i % (unsigned)inner, rest = i / (unsigned)inner;
        unsigned ib = rest % (unsigned)b, ia = rest / (unsigned)b;  // i indexes x as [ia, ib, k]
        y[(ib * a + ia) * inner + k] = x[i];
    }
}

// Channels c0 .. c0 + c of x [n, ctot, h, w] -> col [c*k*k, n*oh*ow] (one group of a grouped
// convolution; c0 = 0 and c = ctot for a dense one)
extern "C" __global__ void im2col(const float* x, float* col, int n, int c, int ctot, int c0, int h, int w, int k, int stride, int pad) {
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    unsigned cols = n * oh * ow;
    LOOP(i, c * k * k * cols) {
        unsigned row = i / cols, j = i % cols;
        int kx = row % k, ky = (row / k) % k, ch = row / (k * k);
        int ox = j % ow, oy = (j / ow) % oh, b = j / (ow * oh);
        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        col[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[((b * ctot + c0 + ch) * h + iy) * w + ix] : 0.0f;
    }
}

// col [c*k*k, n*oh*ow] -> channels c0 .. c0 + c of dx [n, ctot, h, w]: each input element sums
// the columns it went into (the groups of a grouped convolution write disjoint channels)
extern "C" __global__ void col2im(const float* col, float* dx, int n, int c, int ctot, int c0, int h, int w, int k, int stride, int pad) {
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    unsigned cols = n * oh * ow;
    LOOP(i, n * c * h * w) {
        int ix = i % w, iy = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
        float s = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int ty = iy + pad - ky;
            if (ty < 0 || ty % stride != 0) continue;
            int oy = ty / stride;
            if (oy >= oh) continue;
            for (int kx = 0; kx < k; kx++) {
                int tx = ix + pad - kx;
                if (tx < 0 || tx % stride != 0) continue;
                int ox = tx / stride;
                if (ox >= ow) continue;
                unsigned row = (ch * k + ky) * k + kx;
                s += col[row * cols + (b * oh + oy) * ow + ox];
            }
        }
        dx[((b * ctot + c0 + ch) * h + iy) * w + ix] = s;
    }
}

// ReLU6 (min(max(x, 0), 6), NaN kept) and its gradient (where 0 < x < 6)
extern "C" __global__ void relu6_fwd(const float* x, float* y, size_t n) {
    LOOP(i, n) {
        float v = x[i];
        y[i] = !(v <= 0.0f) ? (v > 6.0f ? 6.0f : v) : 0.0f;
    }
}

extern "C" __global__ void relu6_bwd(const float* x, const float* dy, float* dx, size_t n) {
    LOOP(i, n) dx[i] = (x[i] > 0.0f && x[i] < 6.0f) ? dy[i] : 0.0f;
}

// Channels os .. os + cnt of src [n, cs, plane] into channels od .. od + cnt of dst [n, cd,
// plane], set or added: concatenation, splitting, and their gradients.
extern "C" __global__ void channel_copy(const float* src, float* dst, int n, int cs, int cd, int os, int od, int cnt, int plane, int add) {
    LOOP(i, (size_t)n * cnt * plane) {
        int p = i % plane, ch = (i / plane) % cnt, b = i / ((size_t)plane * cnt);
        float v = src[((size_t)b * cs + os + ch) * plane + p];
        size_t at = ((size_t)b * cd + od + ch) * plane + p;
        dst[at] = add ? dst[at] + v : v;
    }
}

// Channel shuffle of x [n, c, plane] with `groups` (output channel k * groups + g is input
// channel g * (c / groups) + k); `inverse` undoes it (the gradient).
extern "C" __global__ void channel_shuffle(const float* x, float* y, int n, int c, int groups, int plane, int inverse) {
    int per = c / groups;
    LOOP(i, (size_t)n * c * plane) {
        int p = i % plane, j = (i / plane) % c, b = i / ((size_t)plane * c);
        int from = inverse ? (j % per) * groups + j / per : (j % groups) * per + j / groups;
        y[i] = x[((size_t)b * c + from) * plane + p];
    }
}

// Block-wide sums of two doubles (blockDim.x is a power of two, at most 1024).
__device__ void block_sum2(double* sa, double* sb, double a, double b) {
    sa[threadIdx.x] = a;
    sb[threadIdx.x] = b;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            sa[threadIdx.x] += sa[threadIdx.x + s];
            sb[threadIdx.x] += sb[threadIdx.x + s];
        }
        __syncthreads();
    }
}

// Per channel of x [n, c, plane]: sum and sum over the rows of `inner` (bias gradients: db[ch] = sum dy).
extern "C" __global__ void channel_sum(const float* x, float* out, int n, int c, int plane) {
    __shared__ double sa[256], sb[256];
    int ch = blockIdx.x;
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < (unsigned)(n * plane); j += blockDim.x) {
        unsigned b = j / plane, p = j % plane;
        s += x[(b * c + ch) * plane + p];
    }
    block_sum2(sa, sb, s, 0.0);
    if (threadIdx.x == 0) out[ch] = (float)sa[0];
}

// Batch-norm statistics per channel of x [n, c, plane]: mean, biased variance (two passes, double).
extern "C" __global__ void bn_stats(const float* x, float* mean, float* var, int n, int c, int plane) {
    __shared__ double sa[256], sb[256];
    int ch = blockIdx.x;
    unsigned count = n * plane;
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) s += x[((j / plane) * c + ch) * plane + j % plane];
    block_sum2(sa, sb, s, 0.0);
    double m = sa[0] / count;
    __syncthreads();
    double q = 0.0;
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
        double d = x[((j / plane) * c + ch) * plane + j % plane] - m;
        q += d * d;
    }
    block_sum2(sa, sb, q, 0.0);
    if (threadIdx.x == 0) {
        mean[ch] = (float)m;
        var[ch] = (float)(sa[0] / count);
    }
}

// y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel
extern "C" __global__ void bn_apply(const float* x, const float* mean, const float* var, const float* gamma, const float* beta, float* y, float eps, int n, int c, int plane) {
    LOOP(i, (size_t)n * c * plane) {
        int ch = (i / plane) % c;
        float is = 1.0f / sqrtf(var[ch] + eps);
        y[i] = gamma[ch] * ((x[i] - mean[ch]) * is) + beta[ch];
    }
}

// running = (1 - m) * running + m * batch (variance made unbiased with count / (count - 1))
extern "C" __global__ void bn_running(float* rmean, float* rvar, const float* mean, const float* var, float momentum, float unbias, int c) {
    LOOP(i, (size_t)c) {
        rmean[i] = (1.0f - momentum) * rmean[i] + momentum * mean[i];
        rvar[i] = (1.0f - momentum) * rvar[i] + momentum * (var[i] * unbias);
    }
}

// Batch-norm backward, per channel: dbeta = sum dy, dgamma = sum dy * xhat.
extern "C" __global__ void bn_bwd_reduce(const float* dy, const float* x, const float* mean, const float* var, float eps, float* dgamma, float* dbeta, int n, int c, int plane) {
    __shared__ double sa[256], sb[256];
    int ch = blockIdx.x;
    float m = mean[ch], is = 1.0f / sqrtf(var[ch] + eps);
    double g = 0.0, b = 0.0;
    for (unsigned j = threadIdx.x; j < (unsigned)(n * plane); j += blockDim.x) {
        unsigned at = ((j / plane) * c + ch) * plane + j % plane;
        b += dy[at];
        g += (double)dy[at] * ((x[at] - m) * is);
    }
    block_sum2(sa, sb, g, b);
    if (threadIdx.x == 0) {
        dgamma[ch] = (float)sa[0];
        dbeta[ch] = (float)sb[0];
    }
}

// dx = gamma * invstd / count * (count * dy - dbeta - xhat * dgamma)
extern "C" __global__ void bn_bwd_dx(const float* dy, const float* x, const float* mean, const float* var, float eps, const float* gamma, const float* dgamma, const float* dbeta, float* dx, int n, int c, int plane) {
    float count = (float)n * plane;
    LOOP(i, (size_t)n * c * plane) {
        int ch = (i / plane) % c;
        float is = 1.0f / sqrtf(var[ch] + eps);
        float xhat = (x[i] - mean[ch]) * is;
        dx[i] = gamma[ch] * is / count * (count * dy[i] - dbeta[ch] - xhat * dgamma[ch]);
    }
}

// Max pooling with padding (as -inf) over planes [nc, h, w]: y and the flat input index of
// each maximum (the first; NaN propagates, as on the CPU and in PyTorch).
extern "C" __global__ void maxpool_fwd(const float* x, float* y, int* arg, int nc, int h, int w, int k, int s, int pad, int oh, int ow) {
    LOOP(i, (size_t)nc * oh * ow) {
        int ox = i % ow, oy = (i / ow) % oh, p = i / ((size_t)ow * oh);
        size_t best = 0;
        float v = 0.0f;
        bool any = false;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                size_t at = (size_t)p * h * w + (size_t)iy * w + ix;
                float xv = x[at];
                if (!any || xv > v || isnan(xv)) { v = xv; best = at; any = true; }
            }
        y[i] = v;
        arg[i] = (int)best;
    }
}

// Pooling backward with padding, gathered: each input element sums the gradients of the
// windows that cover it; with `arg` (max pooling) only of those whose maximum it was, without
// (average pooling, padding counted) each divided by the window size.
__device__ void pool_bwd(const float* dy, const int* arg, float* dx, int nc, int h, int w, int k, int s, int pad, int oh, int ow) {
    LOOP(i, (size_t)nc * h * w) {
        int ix = i % w, iy = (i / w) % h, p = i / ((size_t)w * h);
        float g = 0.0f;
        for (int oy = (iy + pad) / s; oy >= 0 && oy * s + k > iy + pad; oy--) {
            if (oy >= oh) continue;
            for (int ox = (ix + pad) / s; ox >= 0 && ox * s + k > ix + pad; ox--) {
                if (ox >= ow) continue;
                size_t o = ((size_t)p * oh + oy) * ow + ox;
                if (arg == 0 || (size_t)arg[o] == i) g += dy[o];
            }
        }
        dx[i] = arg == 0 ? g / (float)(k * k) : g;
    }
}

extern "C" __global__ void maxpool_bwd(const float* dy, const int* arg, float* dx, int nc, int h, int w, int k, int s, int pad, int oh, int ow) {
    pool_bwd(dy, arg, dx, nc, h, w, k, s, pad, oh, ow);
}

extern "C" __global__ void avgpool_bwd(const float* dy, float* dx, int nc, int h, int w, int k, int s, int pad, int oh, int ow) {
    pool_bwd(dy, 0, dx, nc, h, w, k, s, pad, oh, ow);
}

// Average pooling with padding counted as zeros (count_include_pad=True).
extern "C" __global__ void avgpool_fwd(const float* x, float* y, int nc, int h, int w, int k, int s, int pad, int oh, int ow) {
    LOOP(i, (size_t)nc * oh * ow) {
        int ox = i % ow, oy = (i / ow) % oh, p = i / ((size_t)ow * oh);
        float acc = 0.0f;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w) acc += x[(size_t)p * h * w + (size_t)iy * w + ix];
            }
        y[i] = acc / (float)(k * k);
    }
}

// [nc, hw] -> [nc]: mean of each plane
extern "C" __global__ void gap_fwd(const float* x, float* y, size_t nc, size_t hw) {
    LOOP(i, nc) {
        double s = 0.0;
        for (size_t j = 0; j < hw; j++) s += x[i * hw + j];
        y[i] = (float)(s / hw);
    }
}

extern "C" __global__ void gap_bwd(const float* dy, float* dx, size_t nc, size_t hw) {
    LOOP(i, nc * hw) dx[i] = dy[i / hw] / (float)hw;
}

// SGD as dfdx's kernel (and PyTorch): L2 decay into the gradient, classic or Nesterov momentum.
// momentum_type: 0 none, 1 classic, 2 Nesterov.
extern "C" __global__ void sgd(float* p, const float* g, float* v, float lr, float momentum, int momentum_type, float wd, size_t n) {
    LOOP(i, n) {
        float gi = g[i] + wd * p[i];
        if (momentum_type == 1) {
            v[i] = gi + momentum * v[i];
            gi = v[i];
        } else if (momentum_type == 2) {
            v[i] = gi + momentum * v[i];
            gi = gi + momentum * v[i];
        }
        p[i] -= lr * gi;
    }
}

// Adam with bias correction (at most 12 kernel arguments: the host folds lr / (1 - b1^t) and
// lr * decoupled decay). l2 goes into the gradient; decoupled_lr is AdamW's decay times lr.
extern "C" __global__ void adam(float* p, const float* g, float* m, float* v, float lr_bc1, float b1, float b2, float eps, float l2, float decoupled_lr, float bc2, size_t n) {
    LOOP(i, n) {
        float gi = g[i] + l2 * p[i];
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + gi * gi * (1.0f - b2);
        p[i] -= lr_bc1 * m[i] / (sqrtf(v[i] / bc2) + eps) + decoupled_lr * p[i];
    }
}

// Row-wise log-sum-exp of x / temperature, in double.
__device__ double row_lse(const float* x, int c, double temperature) {
    double m = -1.0 / 0.0;
    for (int k = 0; k < c; k++) m = fmax(m, (double)x[k] / temperature);
    double s = 0.0;
    for (int k = 0; k < c; k++) s += exp((double)x[k] / temperature - m);
    return log(s) + m;
}

// Cross-entropy (kind 0, with label smoothing), Hinton KD (1) and WSL (2) on logits s [b, c]
// against labels y and teacher logits t (KD/WSL), one thread per sample, in double as
// src/loss.rs: the gradient w.r.t. s goes to grad [b, c]; parts [b, 5] get ce_student,
// ce_teacher, the soft-term weight, the soft term and the sample's term of the summed loss.
// m [b] scales each soft term (sample filters); hard [2] holds the label smoothing and the
// weight of the cross-entropy term (ce_weight).
extern "C" __global__ void distill_loss(const float* s, const float* t, const int* y, const float* m, float* grad, double* parts, int kind, const float* hard_f, float temperature_f, float alpha_f, int b, int c) {
    LOOP(i, b) {
        const float* si = s + (size_t)i * c;
        double smoothing = hard_f[0], cw = hard_f[1], T = temperature_f, alpha = alpha_f;
        double lse1 = row_lse(si, c, 1.0);
        double ce_s = -((double)si[y[i]] - lse1);
        double mean_lp = 0.0;
        for (int k = 0; k < c; k++) mean_lp += (double)si[k] - lse1;
        double total = cw * ((1.0 - smoothing) * ce_s + smoothing * (-mean_lp / c));
        for (int k = 0; k < c; k++) {
            double q = (1.0 - smoothing) * (k == y[i] ? 1.0 : 0.0) + smoothing / c;
            grad[(size_t)i * c + k] = (float)(cw * (exp((double)si[k] - lse1) - q) / b);
        }
        double ce_t = 0.0, w = 1.0, soft = 0.0;
        if (kind != 0) {
            const float* ti = t + (size_t)i * c;
            ce_t = -((double)ti[y[i]] - row_lse(ti, c, 1.0));
            if (kind == 2) w = 1.0 - exp(-fmax(ce_s / (ce_t + 1e-7), 0.0));
            double mi = m[i];
            double lse_s = row_lse(si, c, T), lse_t = row_lse(ti, c, T);
            for (int k = 0; k < c; k++) {
                double ps = (double)si[k] / T - lse_s, pt = (double)ti[k] / T - lse_t;
                soft -= exp(pt) * ps;
            }
            total += alpha * T * T * w * mi * soft;
            double scale = alpha * T * T / b;
            for (int k = 0; k < c; k++) {
                double ps = exp((double)si[k] / T - lse_s), pt = exp((double)ti[k] / T - lse_t);
                // recomputed in double from the float already written: the CE part first, as the CPU adds it
                double hard = cw * (exp((double)si[k] - lse1) - ((1.0 - smoothing) * (k == y[i] ? 1.0 : 0.0) + smoothing / c)) / b;
                grad[(size_t)i * c + k] = (float)(hard + scale * w * mi * (ps - pt) / T);
            }
        }
        double* p = parts + (size_t)i * 5;
        p[0] = ce_s; p[1] = ce_t; p[2] = w; p[3] = soft; p[4] = total;
    }
}
