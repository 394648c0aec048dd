;; Bit-packed binary convolution for the CPU: WebAssembly SIMD, with popcounts either i8x16.popcnt or i64.popcnt.
;; Bit layouts are those of ../binary-conv.ts. Pointers are byte offsets into the exported memory; 0 means
;; absent (the host never places data at 0).
;;
;; The packed input is stored with its padding border as zero words ([N][HP][WP][words]; a zero bit is a +1
;; input), so a window is read without bounds checks and each of its kernel rows (k pixels × words) is
;; contiguous. A call is pack, conv (integer dot products), epilogue (to float, in place).
(module
  (memory (export "memory") 1)

  ;; Sign-and-pack into the padded layout: bit c of a pixel's words is 1 where scale[c]·x[c] + shift[c] < 0
  ;; (the raw sign of x where scale = 0, absent). Four channels per SIMD compare; the border is left as it is
  ;; (the host zeroes it).
  (func (export "pack")
    (param $x i32) (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $words i32)
    (param $scale i32) (param $shift i32) (param $out i32) (param $hp i32) (param $wp i32)
    (param $padTop i32) (param $padLeft i32)
    (local $b i32) (local $y i32) (local $px i32) (local $ch i32) (local $bits i32) (local $c4 i32)
    (local $src i32) (local $dst i32) (local $v v128) (local $s f32)
    (local.set $c4 (i32.and (local.get $c) (i32.const -4)))
    (local.set $src (local.get $x))
    (local.set $b (i32.const 0))
    (block $done_b (loop $next_b
      (br_if $done_b (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $y (i32.const 0))
      (block $done_y (loop $next_y
        (br_if $done_y (i32.ge_u (local.get $y) (local.get $h)))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul
          (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $hp)) (i32.add (local.get $y) (local.get $padTop)))
            (local.get $wp)) (local.get $padLeft))
          (local.get $words)) (i32.const 2))))
        (local.set $px (i32.const 0))
        (block $done_x (loop $next_x
          (br_if $done_x (i32.ge_u (local.get $px) (local.get $w)))
          (local.set $ch (i32.const 0))
          (local.set $bits (i32.const 0))
          ;; four channels at a time: their sign bits are the compare mask's lanes
          (block $done_v (loop $next_v
            (br_if $done_v (i32.ge_u (local.get $ch) (local.get $c4)))
            (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $ch) (i32.const 2)))))
            (if (local.get $scale) (then
              (local.set $v (f32x4.add
                (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $scale) (i32.shl (local.get $ch) (i32.const 2)))))
                (v128.load (i32.add (local.get $shift) (i32.shl (local.get $ch) (i32.const 2))))))))
            (local.set $bits (i32.or (local.get $bits) (i32.shl
              (i32x4.bitmask (f32x4.lt (local.get $v) (v128.const f32x4 0 0 0 0)))
              (i32.and (local.get $ch) (i32.const 31)))))
            (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
            (if (i32.eqz (i32.and (local.get $ch) (i32.const 31))) (then
              (i32.store (i32.add (local.get $dst) (i32.shl (i32.sub (i32.shr_u (local.get $ch) (i32.const 5)) (i32.const 1)) (i32.const 2)))
                (local.get $bits))
              (local.set $bits (i32.const 0))))
            (br $next_v)))
          ;; the last channels one at a time
          (block $done_c (loop $next_c
            (br_if $done_c (i32.ge_u (local.get $ch) (local.get $c)))
            (local.set $s (f32.load (i32.add (local.get $src) (i32.shl (local.get $ch) (i32.const 2)))))
            (if (local.get $scale) (then
              (local.set $s (f32.add
                (f32.mul (local.get $s) (f32.load (i32.add (local.get $scale) (i32.shl (local.get $ch) (i32.const 2)))))
                (f32.load (i32.add (local.get $shift) (i32.shl (local.get $ch) (i32.const 2))))))))
            (if (f32.lt (local.get $s) (f32.const 0)) (then
              (local.set $bits (i32.or (local.get $bits) (i32.shl (i32.const 1) (i32.and (local.get $ch) (i32.const 31)))))))
            (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
            (if (i32.eqz (i32.and (local.get $ch) (i32.const 31))) (then
              (i32.store (i32.add (local.get $dst) (i32.shl (i32.sub (i32.shr_u (local.get $ch) (i32.const 5)) (i32.const 1)) (i32.const 2)))
                (local.get $bits))
              (local.set $bits (i32.const 0))))
            (br $next_c)))
          ;; a last, partly filled word
          (if (i32.and (local.get $ch) (i32.const 31)) (then
            (i32.store (i32.add (local.get $dst) (i32.shl (i32.shr_u (local.get $ch) (i32.const 5)) (i32.const 2)))
              (local.get $bits))))
          (local.set $src (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 2))))
          (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $words) (i32.const 2))))
          (local.set $px (i32.add (local.get $px) (i32.const 1)))
          (br $next_x)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $next_y)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next_b))))

  ;; Which of a window's k taps along one axis fall outside [0, size): bit i for tap i, the window starting at
  ;; o·stride − pad.
  (func $axisOutside (param $o i32) (param $stride i32) (param $pad i32) (param $size i32) (param $k i32) (result i32)
    (local $i i32) (local $at i32) (local $bits i32)
    (local.set $at (i32.sub (i32.mul (local.get $o) (local.get $stride)) (local.get $pad)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (if (i32.or (i32.lt_s (local.get $at) (i32.const 0)) (i32.ge_s (local.get $at) (local.get $size))) (then
        (local.set $bits (i32.or (local.get $bits) (i32.shl (i32.const 1) (local.get $i))))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $bits))

  ;; With 0 padding, after the conv: the conv counted a window's outside taps as +1 inputs (zero bits), so each
  ;; border pixel's dot products lose those taps' contribution, the weights' tap sums ([cout][k·k]).
  (func (export "unpad")
    (param $out i32) (param $n i32) (param $oh i32) (param $ow i32) (param $cout i32) (param $k i32)
    (param $stride i32) (param $h i32) (param $w i32) (param $padTop i32) (param $padLeft i32) (param $tapSums i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $o i32) (local $rows i32) (local $cols i32)
    (local $mask i32) (local $t i32) (local $ptr i32) (local $sums i32) (local $d i32) (local $bits i32)
    (block $done_b (loop $next_b
      (br_if $done_b (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $done_y (loop $next_y
        (br_if $done_y (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $rows (call $axisOutside (local.get $oy) (local.get $stride) (local.get $padTop) (local.get $h) (local.get $k)))
        (local.set $ox (i32.const 0))
        (block $done_x (loop $next_x
          (br_if $done_x (i32.ge_u (local.get $ox) (local.get $ow)))
          (local.set $cols (call $axisOutside (local.get $ox) (local.get $stride) (local.get $padLeft) (local.get $w) (local.get $k)))
          (if (i32.or (local.get $rows) (local.get $cols)) (then
            ;; tap ky·k + kx is outside where its row or its column is
            (local.set $mask (i32.const 0))
            (local.set $t (i32.const 0))
            (block $done_t (loop $next_t
              (br_if $done_t (i32.ge_u (local.get $t) (i32.mul (local.get $k) (local.get $k))))
              (if (i32.and (i32.or
                    (i32.shr_u (local.get $rows) (i32.div_u (local.get $t) (local.get $k)))
                    (i32.shr_u (local.get $cols) (i32.rem_u (local.get $t) (local.get $k))))
                  (i32.const 1))
                (then (local.set $mask (i32.or (local.get $mask) (i32.shl (i32.const 1) (local.get $t))))))
              (local.set $t (i32.add (local.get $t) (i32.const 1)))
              (br $next_t)))
            (local.set $ptr (i32.add (local.get $out) (i32.shl (i32.mul
              (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $oy)) (local.get $ow)) (local.get $ox))
              (local.get $cout)) (i32.const 2))))
            (local.set $sums (local.get $tapSums))
            (local.set $o (i32.const 0))
            (block $done_o (loop $next_o
              (br_if $done_o (i32.ge_u (local.get $o) (local.get $cout)))
              (local.set $d (i32.load (local.get $ptr)))
              (local.set $bits (local.get $mask))
              (local.set $t (i32.const 0))
              (block $done_m (loop $next_m
                (br_if $done_m (i32.eqz (local.get $bits)))
                (if (i32.and (local.get $bits) (i32.const 1)) (then
                  (local.set $d (i32.sub (local.get $d) (i32.load (i32.add (local.get $sums) (i32.shl (local.get $t) (i32.const 2))))))))
                (local.set $bits (i32.shr_u (local.get $bits) (i32.const 1)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $next_m)))
              (i32.store (local.get $ptr) (local.get $d))
              (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
              (local.set $sums (i32.add (local.get $sums) (i32.shl (i32.mul (local.get $k) (local.get $k)) (i32.const 2))))
              (local.set $o (i32.add (local.get $o) (i32.const 1)))
              (br $next_o)))))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $next_x)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $next_y)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next_b))))

  ;; Sum of the four 32-bit lanes.
  (func $lanes (param $v v128) (result i32)
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 1 (local.get $v)))
      (i32.add (i32x4.extract_lane 2 (local.get $v)) (i32x4.extract_lane 3 (local.get $v)))))

  ;; Bytes of popcounts into 32-bit lanes.
  (func $widen (param $v v128) (result v128)
    (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (local.get $v))))

  ;; XOR-popcount throughput, for `bench`: $reps passes over $bytes (a multiple of 64) at $buf, each 16-byte unit
  ;; XORed with the first and counted, as the conv's inner loop does but with nothing else to do. Returns the count,
  ;; so that none of it is dead code.
  (func (export "xorPopcount") (param $buf i32) (param $bytes i32) (param $reps i32) (param $simd i32) (result i64)
    (local $p i32) (local $end i32) (local $steps i32) (local $key v128) (local $kl i64) (local $kh i64)
    (local $a0 v128) (local $a1 v128) (local $s v128) (local $c0 i64) (local $c1 i64)
    (local.set $key (v128.load (local.get $buf)))
    (local.set $kl (i64.load (local.get $buf)))
    (local.set $kh (i64.load offset=8 (local.get $buf)))
    (local.set $end (i32.add (local.get $buf) (local.get $bytes)))
    (block $done_r (loop $next_r
      (br_if $done_r (i32.eqz (local.get $reps)))
      (local.set $p (local.get $buf))
      (block $done_p (loop $next_p
        (br_if $done_p (i32.ge_u (local.get $p) (local.get $end)))
        (if (local.get $simd)
          (then
            (local.set $a0 (i8x16.add (local.get $a0) (i8x16.add
              (i8x16.popcnt (v128.xor (local.get $key) (v128.load offset=0 (local.get $p))))
              (i8x16.popcnt (v128.xor (local.get $key) (v128.load offset=16 (local.get $p)))))))
            (local.set $a1 (i8x16.add (local.get $a1) (i8x16.add
              (i8x16.popcnt (v128.xor (local.get $key) (v128.load offset=32 (local.get $p))))
              (i8x16.popcnt (v128.xor (local.get $key) (v128.load offset=48 (local.get $p)))))))
            ;; bytes gain at most 16 per step: widened every 15 steps
            (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
            (if (i32.eq (local.get $steps) (i32.const 15)) (then
              (local.set $s (i32x4.add (local.get $s) (i32x4.add (call $widen (local.get $a0)) (call $widen (local.get $a1)))))
              (local.set $a0 (v128.const i32x4 0 0 0 0))
              (local.set $a1 (v128.const i32x4 0 0 0 0))
              (local.set $steps (i32.const 0)))))
          (else
            (local.set $c0 (i64.add (local.get $c0) (i64.add
              (i64.add (i64.popcnt (i64.xor (local.get $kl) (i64.load offset=0 (local.get $p))))
                (i64.popcnt (i64.xor (local.get $kh) (i64.load offset=8 (local.get $p)))))
              (i64.add (i64.popcnt (i64.xor (local.get $kl) (i64.load offset=16 (local.get $p))))
                (i64.popcnt (i64.xor (local.get $kh) (i64.load offset=24 (local.get $p))))))))
            (local.set $c1 (i64.add (local.get $c1) (i64.add
              (i64.add (i64.popcnt (i64.xor (local.get $kl) (i64.load offset=32 (local.get $p))))
                (i64.popcnt (i64.xor (local.get $kh) (i64.load offset=40 (local.get $p)))))
              (i64.add (i64.popcnt (i64.xor (local.get $kl) (i64.load offset=48 (local.get $p))))
                (i64.popcnt (i64.xor (local.get $kh) (i64.load offset=56 (local.get $p))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $next_p)))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br $next_r)))
    (local.set $s (i32x4.add (local.get $s) (i32x4.add (call $widen (local.get $a0)) (call $widen (local.get $a1)))))
    (i64.add (i64.add (local.get $c0) (local.get $c1)) (i64.extend_i32_u (call $lanes (local.get $s)))))

  ;; The epilogue, in place over the conv's i32 dot products [N][pixels][cout], making them float32, four channels
  ;; at a time (NHWC keeps a pixel's channels contiguous): channel (or per-image channel) scale, spatial scale,
  ;; PReLU, bias, residual, each rounded to float32 in the reference's order.
  (func (export "epilogue")
    (param $out i32) (param $n i32) (param $pixels i32) (param $cout i32) (param $scale i32) (param $perImage i32)
    (param $spatial i32) (param $alpha i32) (param $bias i32) (param $residual i32)
    (local $b i32) (local $p i32) (local $o i32) (local $c4 i32) (local $ptr i32) (local $res i32) (local $sc i32)
    (local $y v128) (local $sp v128) (local $f f32)
    (local.set $c4 (i32.and (local.get $cout) (i32.const -4)))
    (local.set $ptr (local.get $out))
    (local.set $res (local.get $residual))
    (block $done_b (loop $next_b
      (br_if $done_b (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $sc (select (i32.add (local.get $scale) (i32.shl (i32.mul (local.get $b) (local.get $cout)) (i32.const 2)))
        (local.get $scale) (local.get $perImage)))
      (local.set $p (i32.const 0))
      (block $done_p (loop $next_p
        (br_if $done_p (i32.ge_u (local.get $p) (local.get $pixels)))
        (if (local.get $spatial) (then
          (local.set $sp (f32x4.splat (f32.load (i32.add (local.get $spatial) (i32.shl (local.get $p) (i32.const 2))))))))
        (local.set $o (i32.const 0))
        (block $done_v (loop $next_v
          (br_if $done_v (i32.ge_u (local.get $o) (local.get $c4)))
          (local.set $y (f32x4.mul (f32x4.convert_i32x4_s (v128.load (local.get $ptr))) (v128.load (i32.add (local.get $sc) (i32.shl (local.get $o) (i32.const 2))))))
          (if (local.get $spatial) (then (local.set $y (f32x4.mul (local.get $y) (local.get $sp)))))
          (if (local.get $alpha) (then
            (local.set $y (v128.bitselect
              (f32x4.mul (local.get $y) (v128.load (i32.add (local.get $alpha) (i32.shl (local.get $o) (i32.const 2)))))
              (local.get $y)
              (f32x4.lt (local.get $y) (v128.const f32x4 0 0 0 0))))))
          (if (local.get $bias) (then
            (local.set $y (f32x4.add (local.get $y) (v128.load (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2))))))))
          (if (local.get $residual) (then (local.set $y (f32x4.add (local.get $y) (v128.load (local.get $res))))))
          (v128.store (local.get $ptr) (local.get $y))
          (local.set $ptr (i32.add (local.get $ptr) (i32.const 16)))
          (local.set $res (i32.add (local.get $res) (i32.const 16)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (br $next_v)))
        (block $done_o (loop $next_o
          (br_if $done_o (i32.ge_u (local.get $o) (local.get $cout)))
          (local.set $f (f32.mul (f32.convert_i32_s (i32.load (local.get $ptr))) (f32.load (i32.add (local.get $sc) (i32.shl (local.get $o) (i32.const 2))))))
          (if (local.get $spatial) (then (local.set $f (f32.mul (local.get $f) (f32x4.extract_lane 0 (local.get $sp))))))
          (if (local.get $alpha) (then
            (if (f32.lt (local.get $f) (f32.const 0)) (then
              (local.set $f (f32.mul (local.get $f) (f32.load (i32.add (local.get $alpha) (i32.shl (local.get $o) (i32.const 2))))))))))
          (if (local.get $bias) (then
            (local.set $f (f32.add (local.get $f) (f32.load (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2))))))))
          (if (local.get $residual) (then (local.set $f (f32.add (local.get $f) (f32.load (local.get $res))))))
          (f32.store (local.get $ptr) (local.get $f))
          (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
          (local.set $res (i32.add (local.get $res) (i32.const 4)))
          (local.set $o (i32.add (local.get $o) (i32.const 1)))
          (br $next_o)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next_p)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next_b))))

  ;; XNOR-popcount conv: integer dot products (i32) for the epilogue pass. Four horizontally adjacent output
  ;; pixels at a time: their k×k windows are gathered into $win interleaved in 16-byte units ([unit][pixel]),
  ;; each window zero-filled to whole units, so one weight unit loaded ([cout][units], same zero fill) meets the
  ;; four pixels' units at fixed offsets. All four are stored without checks, as the hot loop has no register
  ;; to spare: past a row's end, the row's last pixel again goes to the next row's first pixels, which are
  ;; written later, or after the last row to three spare pixels the host leaves after the output.
  ;; Two ways to count mismatching bits, the same result: with $simd, i8x16.popcnt (one instruction on ARM,
  ;; NEON CNT; a byte-shuffle sequence on x86); otherwise i64.popcnt (x86's native POPCNT). Byte counts gain at
  ;; most 8 per step and are widened to 32-bit lanes every 31 steps, before a byte could pass 255.
  (func (export "conv")
    (param $bits i32) (param $n i32) (param $hp i32) (param $wp i32) (param $words i32)
    (param $k i32) (param $stride i32) (param $oh i32) (param $ow i32)
    (param $weights i32) (param $units i32) (param $cout i32) (param $cin i32)
    (param $win i32) (param $out i32) (param $simd i32)
    (local $segWords i32) (local $rowBytes i32) (local $pixBytes i32) (local $full i32) (local $taps i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $o i32) (local $i i32) (local $ky i32) (local $j i32)
    (local $live i32) (local $src i32) (local $dst i32) (local $x i32) (local $wptr i32) (local $end i32)
    (local $steps i32) (local $pixOut i32) (local $p i32) (local $unitBytes i32)
    (local $wv v128) (local $wl i64) (local $wh i64)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $c0 i64) (local $c1 i64) (local $c2 i64) (local $c3 i64)
    (local.set $taps (i32.mul (local.get $k) (local.get $k)))
    (local.set $full (i32.mul (local.get $taps) (local.get $cin)))
    (local.set $segWords (i32.mul (local.get $k) (local.get $words)))
    (local.set $rowBytes (i32.shl (i32.mul (local.get $wp) (local.get $words)) (i32.const 2)))
    (local.set $pixBytes (i32.shl (i32.mul (local.get $stride) (local.get $words)) (i32.const 2)))
    (local.set $pixOut (i32.shl (local.get $cout) (i32.const 2)))
    (local.set $unitBytes (i32.shl (local.get $units) (i32.const 4)))
    (local.set $b (i32.const 0))
    (block $done_b (loop $next_b
      (br_if $done_b (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $done_y (loop $next_y
        (br_if $done_y (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $ox (i32.const 0))
        (block $done_x (loop $next_x
          (br_if $done_x (i32.ge_u (local.get $ox) (local.get $ow)))
          (local.set $live (i32.sub (local.get $ow) (local.get $ox)))
          ;; gather: word j of pixel i's window goes to win + (j / 4)·64 + i·16 + (j mod 4)·4; one kernel row of a
          ;; window (k pixels' words) is contiguous in the padded input
          (local.set $i (i32.const 0))
          (block $done_g (loop $next_g
            (br_if $done_g (i32.ge_u (local.get $i) (i32.const 4)))
            (local.set $p (i32.add (local.get $bits) (i32.add
              (i32.mul (i32.add (i32.mul (local.get $b) (local.get $hp)) (i32.mul (local.get $oy) (local.get $stride))) (local.get $rowBytes))
              (i32.mul
                (i32.add (local.get $ox) (select (local.get $i) (i32.sub (local.get $live) (i32.const 1)) (i32.gt_s (local.get $live) (local.get $i))))
                (local.get $pixBytes)))))
            (local.set $j (i32.const 0))
            (local.set $ky (i32.const 0))
            (block $done_ky (loop $next_ky
              (br_if $done_ky (i32.ge_u (local.get $ky) (local.get $k)))
              (local.set $src (local.get $p))
              (local.set $end (i32.add (local.get $j) (local.get $segWords)))
              (block $done_w (loop $next_w
                (br_if $done_w (i32.ge_u (local.get $j) (local.get $end)))
                (i32.store (i32.add (local.get $win) (i32.add
                    (i32.shl (i32.shr_u (local.get $j) (i32.const 2)) (i32.const 6))
                    (i32.add (i32.shl (local.get $i) (i32.const 4)) (i32.shl (i32.and (local.get $j) (i32.const 3)) (i32.const 2)))))
                  (i32.load (local.get $src)))
                (local.set $src (i32.add (local.get $src) (i32.const 4)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $next_w)))
              (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
              (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
              (br $next_ky)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next_g)))
          (local.set $wptr (local.get $weights))
          (local.set $dst (i32.add (local.get $out) (i32.mul
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $oy)) (local.get $ow)) (local.get $ox))
            (local.get $pixOut))))
          (local.set $o (i32.const 0))
          (block $done_o (loop $next_o
            (br_if $done_o (i32.ge_u (local.get $o) (local.get $cout)))
            (local.set $x (local.get $win))
            (local.set $end (i32.add (local.get $wptr) (local.get $unitBytes)))
            (if (local.get $simd)
              (then
                (local.set $a0 (v128.const i32x4 0 0 0 0))
                (local.set $a1 (v128.const i32x4 0 0 0 0))
                (local.set $a2 (v128.const i32x4 0 0 0 0))
                (local.set $a3 (v128.const i32x4 0 0 0 0))
                (local.set $s0 (v128.const i32x4 0 0 0 0))
                (local.set $s1 (v128.const i32x4 0 0 0 0))
                (local.set $s2 (v128.const i32x4 0 0 0 0))
                (local.set $s3 (v128.const i32x4 0 0 0 0))
                (local.set $steps (i32.const 0))
                (block $done_v (loop $next_v
                  (br_if $done_v (i32.ge_u (local.get $wptr) (local.get $end)))
                  (local.set $wv (v128.load (local.get $wptr)))
                  (local.set $a0 (i8x16.add (local.get $a0) (i8x16.popcnt (v128.xor (local.get $wv) (v128.load offset=0 (local.get $x))))))
                  (local.set $a1 (i8x16.add (local.get $a1) (i8x16.popcnt (v128.xor (local.get $wv) (v128.load offset=16 (local.get $x))))))
                  (local.set $a2 (i8x16.add (local.get $a2) (i8x16.popcnt (v128.xor (local.get $wv) (v128.load offset=32 (local.get $x))))))
                  (local.set $a3 (i8x16.add (local.get $a3) (i8x16.popcnt (v128.xor (local.get $wv) (v128.load offset=48 (local.get $x))))))
                  (local.set $wptr (i32.add (local.get $wptr) (i32.const 16)))
                  (local.set $x (i32.add (local.get $x) (i32.const 64)))
                  (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
                  (if (i32.eq (local.get $steps) (i32.const 31)) (then
                    (local.set $s0 (i32x4.add (local.get $s0) (call $widen (local.get $a0))))
                    (local.set $s1 (i32x4.add (local.get $s1) (call $widen (local.get $a1))))
                    (local.set $s2 (i32x4.add (local.get $s2) (call $widen (local.get $a2))))
                    (local.set $s3 (i32x4.add (local.get $s3) (call $widen (local.get $a3))))
                    (local.set $a0 (v128.const i32x4 0 0 0 0))
                    (local.set $a1 (v128.const i32x4 0 0 0 0))
                    (local.set $a2 (v128.const i32x4 0 0 0 0))
                    (local.set $a3 (v128.const i32x4 0 0 0 0))
                    (local.set $steps (i32.const 0))))
                  (br $next_v)))
                (local.set $c0 (i64.extend_i32_u (call $lanes (i32x4.add (local.get $s0) (call $widen (local.get $a0))))))
                (local.set $c1 (i64.extend_i32_u (call $lanes (i32x4.add (local.get $s1) (call $widen (local.get $a1))))))
                (local.set $c2 (i64.extend_i32_u (call $lanes (i32x4.add (local.get $s2) (call $widen (local.get $a2))))))
                (local.set $c3 (i64.extend_i32_u (call $lanes (i32x4.add (local.get $s3) (call $widen (local.get $a3)))))))
              (else
                (local.set $c0 (i64.const 0))
                (local.set $c1 (i64.const 0))
                (local.set $c2 (i64.const 0))
                (local.set $c3 (i64.const 0))
                (block $done_l (loop $next_l
                  (br_if $done_l (i32.ge_u (local.get $wptr) (local.get $end)))
                  (local.set $wl (i64.load (local.get $wptr)))
                  (local.set $wh (i64.load offset=8 (local.get $wptr)))
                  (local.set $c0 (i64.add (local.get $c0) (i64.add
                    (i64.popcnt (i64.xor (local.get $wl) (i64.load offset=0 (local.get $x))))
                    (i64.popcnt (i64.xor (local.get $wh) (i64.load offset=8 (local.get $x)))))))
                  (local.set $c1 (i64.add (local.get $c1) (i64.add
                    (i64.popcnt (i64.xor (local.get $wl) (i64.load offset=16 (local.get $x))))
                    (i64.popcnt (i64.xor (local.get $wh) (i64.load offset=24 (local.get $x)))))))
                  (local.set $c2 (i64.add (local.get $c2) (i64.add
                    (i64.popcnt (i64.xor (local.get $wl) (i64.load offset=32 (local.get $x))))
                    (i64.popcnt (i64.xor (local.get $wh) (i64.load offset=40 (local.get $x)))))))
                  (local.set $c3 (i64.add (local.get $c3) (i64.add
                    (i64.popcnt (i64.xor (local.get $wl) (i64.load offset=48 (local.get $x))))
                    (i64.popcnt (i64.xor (local.get $wh) (i64.load offset=56 (local.get $x)))))))
                  (local.set $wptr (i32.add (local.get $wptr) (i32.const 16)))
                  (local.set $x (i32.add (local.get $x) (i32.const 64)))
                  (br $next_l)))))
            ;; d = n − 2·mismatches (with 0 padding, the unpad pass then takes out the outside taps)
            (i32.store (local.get $dst) (i32.sub (local.get $full) (i32.shl (i32.wrap_i64 (local.get $c0)) (i32.const 1))))
            (i32.store (i32.add (local.get $dst) (local.get $pixOut))
              (i32.sub (local.get $full) (i32.shl (i32.wrap_i64 (local.get $c1)) (i32.const 1))))
            (i32.store (i32.add (local.get $dst) (i32.shl (local.get $pixOut) (i32.const 1)))
              (i32.sub (local.get $full) (i32.shl (i32.wrap_i64 (local.get $c2)) (i32.const 1))))
            (i32.store (i32.add (local.get $dst) (i32.mul (local.get $pixOut) (i32.const 3)))
              (i32.sub (local.get $full) (i32.shl (i32.wrap_i64 (local.get $c3)) (i32.const 1))))
            (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (br $next_o)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 4)))
          (br $next_x)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $next_y)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next_b))))
)
