// Latencies of the dot-product pipelines (dfx_dot_tile.v, dfx_dot_acc.v), for the units that
// instantiate them (include inside a module). perf/model.py (Costs.of) computes the same figures.

// registered stages of an n-input tree that registers every two levels (and its last)
function automatic integer dfx_dot_tree_st(input integer n);
    integer lv;
    begin
        lv = 0;
        while ((1 << lv) < n) lv = lv + 1;
        dfx_dot_tree_st = (lv + 1) / 2;
    end
endfunction

// dfx_dot_tile: inputs to the tile sum (decode, then the product beside the exponent max tree,
// then difference, shift, sign, then the sum tree)
function automatic integer dfx_dot_tile_lat(input integer n);
    integer a0;
    begin
        a0 = (1 + dfx_dot_tree_st(n) > 2) ? 1 + dfx_dot_tree_st(n) : 2;
        dfx_dot_tile_lat = a0 + 3 + dfx_dot_tree_st(n);
    end
endfunction

// dfx_dot_acc: a tile sum in to the binary32 result that includes it (shift 2, accumulate 1,
// normalise and round 6)
function automatic integer dfx_dot_acc_lat(input integer dummy);
    dfx_dot_acc_lat = 9 + (dummy & 0);
endfunction
