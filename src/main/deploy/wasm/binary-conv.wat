;; Bit-packed binary convolution for the CPU, WebAssembly SIMD (i8x16.popcnt).
;; Layouts are those of ../binary-conv.ts. Pointers are byte offsets into the exported memory; 0 means absent
;; (the host never places data at 0).
(module
  (memory (export "memory") 1)

  ;; Sign-and-pack: out[p][word] bit j = 1 where scale[c]·x[p][c] + shift[c] < 0 (c = 32·word + j); with
  ;; scale = 0 (absent) the raw sign of x.
  (func (export "pack")
    (param $x i32) (param $pixels i32) (param $c i32) (param $words i32)
    (param $scale i32) (param $shift i32) (param $out i32)
    (local $p i32) (local $ch i32) (local $bits i32) (local $v f32) (local $xrow i32) (local $orow i32)
    (local.set $p (i32.const 0))
    (block $done_p (loop $next_p
      (br_if $done_p (i32.ge_u (local.get $p) (local.get $pixels)))
      (local.set $xrow (i32.add (local.get $x) (i32.shl (i32.mul (local.get $p) (local.get $c)) (i32.const 2))))
      (local.set $orow (i32.add (local.get $out) (i32.shl (i32.mul (local.get $p) (local.get $words)) (i32.const 2))))
      (local.set $ch (i32.const 0))
      (local.set $bits (i32.const 0))
      (block $done_c (loop $next_c
        (br_if $done_c (i32.ge_u (local.get $ch) (local.get $c)))
        (local.set $v (f32.load (i32.add (local.get $xrow) (i32.shl (local.get $ch) (i32.const 2)))))
        (if (local.get $scale) (then
          (local.set $v (f32.add
            (f32.mul (local.get $v) (f32.load (i32.add (local.get $scale) (i32.shl (local.get $ch) (i32.const 2)))))
            (f32.load (i32.add (local.get $shift) (i32.shl (local.get $ch) (i32.const 2))))))))
        (if (f32.lt (local.get $v) (f32.const 0)) (then
          (local.set $bits (i32.or (local.get $bits) (i32.shl (i32.const 1) (i32.and (local.get $ch) (i32.const 31)))))))
        (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
        ;; A finished word (32 channels, or the last channel) is stored.
        (if (i32.or (i32.eqz (i32.and (local.get $ch) (i32.const 31))) (i32.eq (local.get $ch) (local.get $c))) (then
          (i32.store
            (i32.add (local.get $orow) (i32.shl (i32.shr_u (i32.sub (local.get $ch) (i32.const 1)) (i32.const 5)) (i32.const 2)))
            (local.get $bits))
          (local.set $bits (i32.const 0))))
        (br $next_c)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next_p))))

  ;; XNOR-popcount conv with a fused epilogue. For each output pixel the k·k taps' words are gathered into
  ;; one row (out-of-image taps as zero bits, i.e. +1 inputs), padded to whole v128s; each output channel's
  ;; weights are a row of the same layout, so the dot product is one popcount sweep over two rows.
  (func (export "conv")
    (param $bits i32) (param $n i32) (param $h i32) (param $w i32) (param $words i32)
    (param $k i32) (param $stride i32) (param $padTop i32) (param $padLeft i32) (param $oh i32) (param $ow i32)
    (param $weights i32) (param $cout i32) (param $rowVecs i32) (param $cin i32) (param $padOne i32)
    (param $tapSums i32) (param $scale i32) (param $perImage i32) (param $spatial i32) (param $alpha i32)
    (param $bias i32) (param $residual i32) (param $out i32) (param $row i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $t i32) (local $ky i32) (local $kx i32)
    (local $iy i32) (local $ix i32) (local $j i32) (local $dst i32) (local $src i32) (local $mask i32)
    (local $taps i32) (local $o i32) (local $wrow i32) (local $v i32) (local $acc v128) (local $sum v128)
    (local $d i32) (local $y f32) (local $outIdx i32) (local $pix i32) (local $rowBytes i32) (local $full i32)
    (local.set $taps (i32.mul (local.get $k) (local.get $k)))
    (local.set $full (i32.mul (local.get $taps) (local.get $cin)))
    (local.set $rowBytes (i32.shl (local.get $rowVecs) (i32.const 4)))
    (local.set $b (i32.const 0))
    (block $done_b (loop $next_b
      (br_if $done_b (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $done_y (loop $next_y
        (br_if $done_y (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $ox (i32.const 0))
        (block $done_x (loop $next_x
          (br_if $done_x (i32.ge_u (local.get $ox) (local.get $ow)))
          ;; gather the row
          (local.set $mask (i32.const 0))
          (local.set $t (i32.const 0))
          (local.set $ky (i32.const 0))
          (local.set $kx (i32.const 0))
          (local.set $dst (local.get $row))
          (block $done_t (loop $next_t
            (br_if $done_t (i32.ge_u (local.get $t) (local.get $taps)))
            (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $stride)) (local.get $padTop)) (local.get $ky)))
            (local.set $ix (i32.add (i32.sub (i32.mul (local.get $ox) (local.get $stride)) (local.get $padLeft)) (local.get $kx)))
            (if (i32.and
                  (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $h)))
                  (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $w))))
              (then
                (local.set $src (i32.add (local.get $bits) (i32.shl
                  (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $iy)) (local.get $w)) (local.get $ix)) (local.get $words))
                  (i32.const 2))))
                (local.set $j (i32.const 0))
                (block $done_cp (loop $next_cp
                  (br_if $done_cp (i32.ge_u (local.get $j) (local.get $words)))
                  (i32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
                    (i32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2)))))
                  (local.set $j (i32.add (local.get $j) (i32.const 1)))
                  (br $next_cp))))
              (else
                (local.set $mask (i32.or (local.get $mask) (i32.shl (i32.const 1) (local.get $t))))
                (local.set $j (i32.const 0))
                (block $done_z (loop $next_z
                  (br_if $done_z (i32.ge_u (local.get $j) (local.get $words)))
                  (i32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2))) (i32.const 0))
                  (local.set $j (i32.add (local.get $j) (i32.const 1)))
                  (br $next_z)))))
            (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $words) (i32.const 2))))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
            (if (i32.eq (local.get $kx) (local.get $k)) (then
              (local.set $kx (i32.const 0))
              (local.set $ky (i32.add (local.get $ky) (i32.const 1)))))
            (br $next_t)))
          (local.set $pix (i32.add (i32.mul (local.get $oy) (local.get $ow)) (local.get $ox)))
          (local.set $outIdx (i32.mul (i32.add (i32.mul (local.get $b) (i32.mul (local.get $oh) (local.get $ow))) (local.get $pix)) (local.get $cout)))
          ;; one dot product per output channel
          (local.set $o (i32.const 0))
          (local.set $wrow (local.get $weights))
          (block $done_o (loop $next_o
            (br_if $done_o (i32.ge_u (local.get $o) (local.get $cout)))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $v (i32.const 0))
            (block $done_v (loop $next_v
              (br_if $done_v (i32.ge_u (local.get $v) (local.get $rowBytes)))
              (local.set $acc (i16x8.add (local.get $acc)
                (i16x8.extadd_pairwise_i8x16_u (i8x16.popcnt (v128.xor
                  (v128.load (i32.add (local.get $row) (local.get $v)))
                  (v128.load (i32.add (local.get $wrow) (local.get $v))))))))
              (local.set $v (i32.add (local.get $v) (i32.const 16)))
              (br $next_v)))
            (local.set $sum (i32x4.extadd_pairwise_i16x8_u (local.get $acc)))
            (local.set $d (i32.sub (local.get $full) (i32.shl
              (i32.add
                (i32.add (i32x4.extract_lane 0 (local.get $sum)) (i32x4.extract_lane 1 (local.get $sum)))
                (i32.add (i32x4.extract_lane 2 (local.get $sum)) (i32x4.extract_lane 3 (local.get $sum))))
              (i32.const 1))))
            ;; 0 padding: a padded tap was counted as all +1 inputs; take its contribution back out.
            (if (i32.and (i32.eqz (local.get $padOne)) (i32.ne (local.get $mask) (i32.const 0))) (then
              (local.set $t (i32.const 0))
              (block $done_m (loop $next_m
                (br_if $done_m (i32.ge_u (local.get $t) (local.get $taps)))
                (if (i32.and (i32.shr_u (local.get $mask) (local.get $t)) (i32.const 1)) (then
                  (local.set $d (i32.sub (local.get $d) (i32.load (i32.add (local.get $tapSums)
                    (i32.shl (i32.add (i32.mul (local.get $o) (local.get $taps)) (local.get $t)) (i32.const 2))))))))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $next_m)))))
            (local.set $y (f32.mul (f32.convert_i32_s (local.get $d))
              (f32.load (i32.add (local.get $scale) (i32.shl
                (select (i32.add (i32.mul (local.get $b) (local.get $cout)) (local.get $o)) (local.get $o) (local.get $perImage))
                (i32.const 2))))))
            (if (local.get $spatial) (then
              (local.set $y (f32.mul (local.get $y) (f32.load (i32.add (local.get $spatial) (i32.shl (local.get $pix) (i32.const 2))))))))
            (if (local.get $alpha) (then
              (if (f32.lt (local.get $y) (f32.const 0)) (then
                (local.set $y (f32.mul (local.get $y) (f32.load (i32.add (local.get $alpha) (i32.shl (local.get $o) (i32.const 2))))))))))
            (if (local.get $bias) (then
              (local.set $y (f32.add (local.get $y) (f32.load (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2))))))))
            (if (local.get $residual) (then
              (local.set $y (f32.add (local.get $y) (f32.load (i32.add (local.get $residual)
                (i32.shl (i32.add (local.get $outIdx) (local.get $o)) (i32.const 2))))))))
            (f32.store (i32.add (local.get $out) (i32.shl (i32.add (local.get $outIdx) (local.get $o)) (i32.const 2))) (local.get $y))
            (local.set $wrow (i32.add (local.get $wrow) (local.get $rowBytes)))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (br $next_o)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $next_x)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $next_y)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next_b))))
)
