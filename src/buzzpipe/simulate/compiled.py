"""The step compiled with numba: the same draws and rules as ``kernel``, one loop per tie.

:func:`draw_arrays` computes every keyed random number of a step exactly as
``Simulation.draw_step`` does with numpy (the same SplitMix64 hashes, the same float conversions),
and :func:`learn_step` applies the rules of ``kernel.learn`` in the same pair order, with fitness
summed locus by locus like the per-agent reference loop, so all three end on the same strings and
the same fitness bits (tests/simulate/test_simulate_kernel.py). Numba compiles each function the
first time it is called (about 2 s) and caches the machine code on disk.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from buzzpipe.simulate import streams

_G = np.uint64(streams.GOLDEN)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@intrinsic
def _prefetch(typingctx, array, row, column):
    """Ask the processor to fetch the cache line of ``array[row, column]`` ahead of its use
    (LLVM's prefetch hint: no effect on any result)."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, list(args[1:]))
        byte_pointer, int32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0i8",
        )
        # read, keep in every cache level, data
        builder.call(hint, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return types.none(array, row, column), codegen


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _part(h, part):
    return _mix(h ^ (np.uint64(part) + _G))


@njit(cache=True, inline="always")
def _unit(h):
    return np.float64(h >> np.uint64(11)) * (2.0**-53)


@njit(cache=True, inline="always")
def _mask(h, q, bits, full):
    if q == 0:
        return np.uint64(0)
    if q == 1 << bits:
        return full
    mask = np.uint64(0)
    low = 0
    while not (q >> low) & 1:
        low += 1
    for digit in range(low, bits):
        word = _mix(h + np.uint64(digit + 1) * _G)
        if (q >> digit) & 1:
            mask = mask | word
        else:
            mask = mask & word
    return mask & full


@njit(cache=True)
def _active(keys, active_h, activity):
    """Which ties are used this step, and how many."""
    keep = np.empty(len(keys), dtype=np.bool_)
    count = 0
    for e in range(len(keys)):
        keep[e] = _unit(_part(active_h, keys[e])) < activity
        count += keep[e]
    return keep, count


@njit(cache=True)
def _tie_draws(
    source, target, keys, active_h, activity, mask_h, q, mask_bits, full, open_h, absorb_h
):
    """The ties used this step: their ends, keys and crossover masks, and for each row r an
    openness draw keyed by ``open_h[r]`` and an absorption draw keyed by ``absorb_h[r]``."""
    keep, count = _active(keys, active_h, activity)
    ends = np.empty((2, count), dtype=np.int64)
    used = np.empty(count, dtype=np.uint64)
    masks = np.empty(count, dtype=np.uint64)
    opens = np.empty((len(open_h), count))
    absorbs = np.empty((len(absorb_h), count))
    at = 0
    for e in range(len(keys)):
        if keep[e]:
            key = keys[e]
            ends[0, at], ends[1, at], used[at] = source[e], target[e], key
            masks[at] = _mask(_part(mask_h, key), q, mask_bits, full)
            for r in range(len(open_h)):
                opens[r, at] = _unit(_part(open_h[r], key))
            for r in range(len(absorb_h)):
                absorbs[r, at] = _unit(_part(absorb_h[r], key))
            at += 1
    return ends, used, masks, opens, absorbs


@njit(cache=True, inline="always")
def _purposes(step_key):
    """The step key mixed with each purpose of a step's draws."""
    return (
        _part(step_key, streams.ACTIVE), _part(step_key, streams.BUZZ_PARTNER),
        _part(step_key, streams.MASK), _part(step_key, streams.OPEN_A),
        _part(step_key, streams.OPEN_B), _part(step_key, streams.ABSORB_A),
        _part(step_key, streams.ABSORB_B), _part(step_key, streams.EXPLORE),
        _part(step_key, streams.EXPLORE_BIT),
    )  # fmt: skip


@njit(cache=True)
def draw_arrays(
    step_key, local_source, local_target, local_key, local_activity, buzz_firm, buzz_key,
    buzz_start, buzz_size, pipe_source, pipe_target, pipe_key, pipe_activity, world_source,
    world_target, world_key, world_activity, agent_key, explore_rate, q, mask_bits, n_loci,
    pipe_barter, world_barter,
):  # fmt: skip
    """Every keyed number of one step (the arrays of ``kernel.StepDraws`` but the shock)."""
    full = np.uint64((1 << n_loci) - 1)
    (active_h, buzz_h, mask_h, open_a_h, open_b_h, absorb_a_h, absorb_b_h, explore_h,
     bit_h) = _purposes(step_key)  # fmt: skip

    keep, n_local = _active(local_key, active_h, local_activity)
    total = n_local + len(buzz_firm)
    local_a = np.empty(total, dtype=np.int64)
    local_b = np.empty(total, dtype=np.int64)
    keys = np.empty(total, dtype=np.uint64)
    at = 0
    for e in range(len(local_key)):
        if keep[e]:
            local_a[at], local_b[at], keys[at] = local_source[e], local_target[e], local_key[e]
            at += 1
    for i in range(len(buzz_firm)):
        member, start, size = buzz_firm[i], buzz_start[i], buzz_size[i]
        u = _unit(_part(buzz_h, buzz_key[i]))
        if size > 1:
            step = np.int64(np.floor(u * max(size - 1, 1))) + 1
            partner = start + (member - start + step) % size
        else:
            partner = member
        local_a[at], local_b[at], keys[at] = member, partner, buzz_key[i]
        at += 1
    local_mask = np.empty(total, dtype=np.uint64)
    local_open = np.empty((2, total))
    local_absorb = np.empty((2, total))
    for e in range(total):
        key = keys[e]
        local_mask[e] = _mask(_part(mask_h, key), q, mask_bits, full)
        local_open[0, e] = _unit(_part(open_a_h, key))
        local_open[1, e] = _unit(_part(open_b_h, key))
        local_absorb[0, e] = _unit(_part(absorb_a_h, key))
        local_absorb[1, e] = _unit(_part(absorb_b_h, key))

    # pipelines: the foreign side's openness (barter only) and the firm's absorption
    no_sides = np.empty(0, dtype=np.uint64)
    pipe, pipe_keys, pipe_mask, pipe_open, pipe_absorb = _tie_draws(
        pipe_source, pipe_target, pipe_key, active_h, pipe_activity, mask_h, q, mask_bits, full,
        np.array([open_b_h]) if pipe_barter else no_sides, np.array([absorb_a_h]),
    )  # fmt: skip
    pipe_draws = np.ones((2, len(pipe_keys)))  # open (barter only), absorb
    if pipe_barter:
        pipe_draws[0] = pipe_open[0]
    pipe_draws[1] = pipe_absorb[0]
    # world ties: both sides' openness (barter only) and absorption
    world, world_keys, world_mask, world_open, world_absorb = _tie_draws(
        world_source, world_target, world_key, active_h, world_activity, mask_h, q, mask_bits,
        full, np.array([open_a_h, open_b_h]) if world_barter else no_sides,
        np.array([absorb_a_h, absorb_b_h]),
    )  # fmt: skip
    if not world_barter:
        world_open = np.empty((2, 0))

    count = 0
    explores = np.empty(len(agent_key), dtype=np.bool_)
    for i in range(len(agent_key)):
        explores[i] = _unit(_part(explore_h, agent_key[i])) < explore_rate[i]
        count += explores[i]
    explorer = np.empty(count, dtype=np.int64)
    explore_bit = np.empty(count, dtype=np.int64)
    at = 0
    for i in range(len(agent_key)):
        if explores[i]:
            explorer[at] = i
            explore_bit[at] = np.int64(np.floor(_unit(_part(bit_h, agent_key[i])) * n_loci))
            at += 1
    return (
        local_a, local_b, keys, local_mask, local_open, local_absorb, pipe, pipe_keys,
        pipe_mask, pipe_draws, world, world_keys, world_mask, world_open, world_absorb,
        explorer, explore_bit,
    )  # fmt: skip


@njit(cache=True, inline="always")
def _fitness(string, tables, n_loci, code_mask):
    """Fitness of a string: the contributions summed locus by locus, over N (as the loop does)."""
    total = 0.0
    doubled = string | (string << np.uint64(n_loci)) if n_loci <= 32 else string
    for locus in range(n_loci):
        if n_loci <= 32:
            code = (doubled >> np.uint64(locus)) & code_mask
        else:
            code = (
                (string >> np.uint64(locus)) | (string << np.uint64(n_loci - locus))
            ) & code_mask
        total += tables[locus, code]
    return total / n_loci


@njit(cache=True, inline="always")
def _fitness2(first, second, tables, n_loci, code_mask):
    """Two fitnesses in one pass: two independent sums, each in locus order (same bits)."""
    total_first = 0.0
    total_second = 0.0
    for locus in range(n_loci):
        shift = np.uint64(locus)
        back = np.uint64(n_loci - locus)
        code_first = ((first >> shift) | (first << back)) & code_mask
        code_second = ((second >> shift) | (second << back)) & code_mask
        total_first += tables[locus, code_first]
        total_second += tables[locus, code_second]
    return total_first / n_loci, total_second / n_loci


@njit(cache=True)
def _evaluate(proposals, n, tables, n_loci, code_mask, out):
    """``out[i]`` = :func:`_fitness` of ``proposals[i]`` for the first ``n``: the same sums,
    eight at a time (eight independent chains of additions, each in locus order, so the same
    bits), which keeps the processor busy where one sum waits on its previous addition."""
    done = 0
    if n_loci <= 32:
        width, one = np.uint64(n_loci), np.uint64(1)
        done = n - n % 8
        for start in range(0, done, 8):
            d0 = proposals[start] | (proposals[start] << width)
            d1 = proposals[start + 1] | (proposals[start + 1] << width)
            d2 = proposals[start + 2] | (proposals[start + 2] << width)
            d3 = proposals[start + 3] | (proposals[start + 3] << width)
            d4 = proposals[start + 4] | (proposals[start + 4] << width)
            d5 = proposals[start + 5] | (proposals[start + 5] << width)
            d6 = proposals[start + 6] | (proposals[start + 6] << width)
            d7 = proposals[start + 7] | (proposals[start + 7] << width)
            t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0.0
            for locus in range(n_loci):
                table = tables[locus]
                t0 += table[d0 & code_mask]
                t1 += table[d1 & code_mask]
                t2 += table[d2 & code_mask]
                t3 += table[d3 & code_mask]
                t4 += table[d4 & code_mask]
                t5 += table[d5 & code_mask]
                t6 += table[d6 & code_mask]
                t7 += table[d7 & code_mask]
                d0, d1, d2, d3 = d0 >> one, d1 >> one, d2 >> one, d3 >> one
                d4, d5, d6, d7 = d4 >> one, d5 >> one, d6 >> one, d7 >> one
            out[start], out[start + 1] = t0 / n_loci, t1 / n_loci
            out[start + 2], out[start + 3] = t2 / n_loci, t3 / n_loci
            out[start + 4], out[start + 5] = t4 / n_loci, t5 / n_loci
            out[start + 6], out[start + 7] = t6 / n_loci, t7 / n_loci
    for i in range(done, n):
        out[i] = _fitness(proposals[i], tables, n_loci, code_mask)


@njit(cache=True, inline="always")
def _contributions(string, tables, n_loci, code_mask, out):
    doubled = string | (string << np.uint64(n_loci)) if n_loci <= 32 else string
    for locus in range(n_loci):
        if n_loci <= 32:
            code = (doubled >> np.uint64(locus)) & code_mask
        else:
            code = (
                (string >> np.uint64(locus)) | (string << np.uint64(n_loci - locus))
            ) & code_mask
        out[locus] = tables[locus, code]


@njit(cache=True, inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always")
def _absorbs(own, other, draw, n_loci, exponent, chance):
    """Absorb with chance (1 - d / N) ** exponent; ``chance`` tabulates it by d when every
    agent has the same exponent (the same numbers, computed once), else it is empty."""
    distance = _popcount(own ^ other)
    if len(chance):
        return draw < chance[distance]
    return draw < (1.0 - distance / n_loci) ** exponent


@njit(cache=True, inline="always")
def _offer(learner, proposal, value, best_value, best_string, touched, n_touched):
    if best_value[learner] == -np.inf:
        touched[n_touched] = learner
        n_touched += 1
    if value > best_value[learner]:
        best_value[learner] = value
        best_string[learner] = proposal
    return n_touched


@njit(cache=True, inline="always")
def _propose(learner, proposal, value, best_value, best_string):
    """:func:`_offer` without the list of learners (the fused step resets every agent's best
    value in order) and without branches: the learner keeps the first of its highest values."""
    best = best_value[learner]
    better = value > best
    best_value[learner] = value if better else best
    best_string[learner] = proposal if better else best_string[learner]


@njit(cache=True)
def shock_step(
    strings, contributions, fitness, tables, loci, n_loci, code_mask, product, n_product
):
    """Recompute the shocked loci's contributions and every fitness (summed locus by locus), and
    every product fitness (the sum's first ``n_product`` terms, as :func:`product_fitness`)."""
    for i in range(len(strings)):
        string = strings[i]
        for locus in loci:
            code = (
                (string >> np.uint64(locus)) | (string << np.uint64(n_loci - locus))
            ) & code_mask
            contributions[i, locus] = tables[locus, code]
        total = 0.0
        for locus in range(n_loci):
            total += contributions[i, locus]
            if locus + 1 == n_product:
                product[i] = total / n_product
        fitness[i] = total / n_loci


@njit(cache=True, inline="always")
def _record(
    agent, old_row, new_row, old_string, new_string, n_firms, n_product, product, counts,
    block_of, product_gain, process_gain,
):  # fmt: skip
    """One winner of a step: its product fitness (the first ``n_product`` contributions summed
    in locus order), the bit counts of its block, and, for a firm, its product and process
    gains in the survey window (the change of its contributions over N, in locus order)."""
    n_loci = len(new_row)
    if n_product:
        total = 0.0
        for locus in range(n_product):
            total += new_row[locus]
        product[agent] = total / n_product
    block = block_of[agent]
    for locus in range(n_loci):
        shift = np.uint64(locus)
        counts[block, locus] += np.int64((new_string >> shift) & np.uint64(1)) - np.int64(
            (old_string >> shift) & np.uint64(1)
        )
    if agent < n_firms:
        gain_product = 0.0
        gain_process = 0.0
        for locus in range(n_loci):
            gained = (new_row[locus] - old_row[locus]) / n_loci
            if locus < n_product:
                gain_product += gained
            else:
                gain_process += gained
        product_gain[agent] += gain_product
        process_gain[agent] += gain_process


@njit(cache=True)
def record_adoption(
    winners, old, old_strings, strings, contributions, n_firms, n_product, product, counts,
    block_of, product_gain, process_gain,
):  # fmt: skip
    """:func:`_record` for every winner of a step (``fused_step`` records its own)."""
    for w in range(len(winners)):
        agent = winners[w]
        _record(
            agent, old[w], contributions[agent], old_strings[w], strings[agent], n_firms,
            n_product, product, counts, block_of, product_gain, process_gain,
        )  # fmt: skip


@njit(cache=True)
def close_step(
    winners, n_firms, n_product, product, world_reference, market_margin, adopted_now,
    last_change, step,
):  # fmt: skip
    """After a step's winners are recorded: each winning firm's best margin to the market's best
    product fitness now (every firm's, or the world pool's), which agents changed this step and
    when each last did."""
    adopted_now[:] = False
    start, stop = (n_firms, len(product)) if world_reference else (0, n_firms)
    if n_product and len(winners) and stop > start:
        market_best = product[start]
        for agent in range(start + 1, stop):
            market_best = max(market_best, product[agent])
        for w in range(len(winners)):
            agent = winners[w]
            if agent < n_firms:
                market_margin[agent] = max(market_margin[agent], product[agent] - market_best)
    for w in range(len(winners)):
        agent = winners[w]
        last_change[agent] = step
        if agent < n_firms:
            adopted_now[agent] = True


@njit(cache=True)
def learn_step(
    strings, contributions, fitness, tables, n_loci, code_mask, exponents, chance, omega,
    local_a, local_b, local_mask, local_open_a, local_open_b, local_absorb_a, local_absorb_b,
    pipe_firm, pipe_foreign, pipe_mask, pipe_open, pipe_absorb, pipe_barter, evolving,
    world_a, world_b, world_mask, world_open_a, world_open_b, world_absorb_a, world_absorb_b,
    world_barter, explorer, explore_bit, best_value, best_string, touched,
):  # fmt: skip
    """``kernel.learn`` compiled: returns the winners and the contributions they gave up.

    ``best_value`` (filled with -inf), ``best_string`` and ``touched`` are scratch arrays of one
    entry per agent, handed in so a step allocates nothing per agent; they are left as found.
    """
    n_touched = 0
    n_local = len(local_a)
    # local ties: side a in tie order, then side b (the kernel's pair order)
    a_ok = np.zeros(n_local, dtype=np.bool_)
    b_ok = np.zeros(n_local, dtype=np.bool_)
    value_a = np.empty(n_local)
    value_b = np.empty(n_local)
    for e in range(n_local):
        a, b, mask = local_a[e], local_b[e], local_mask[e]
        own_a, own_b = strings[a], strings[b]
        proposal_a = (own_a & ~mask) | (own_b & mask)
        proposal_b = (own_b & ~mask) | (own_a & mask)
        gains_a = gains_b = False
        if proposal_a != own_a and proposal_b != own_b:
            value_a[e], value_b[e] = _fitness2(proposal_a, proposal_b, tables, n_loci, code_mask)
            gains_a, gains_b = value_a[e] > fitness[a], value_b[e] > fitness[b]
        elif proposal_a != own_a:
            value_a[e] = _fitness(proposal_a, tables, n_loci, code_mask)
            gains_a = value_a[e] > fitness[a]
        elif proposal_b != own_b:
            value_b[e] = _fitness(proposal_b, tables, n_loci, code_mask)
            gains_b = value_b[e] > fitness[b]
        if proposal_a != own_a and (gains_b or local_open_a[e] < omega):
            a_ok[e] = _absorbs(own_a, own_b, local_absorb_a[e], n_loci, exponents[a], chance)
        if proposal_b != own_b and (gains_a or local_open_b[e] < omega):
            b_ok[e] = _absorbs(own_b, own_a, local_absorb_b[e], n_loci, exponents[b], chance)
    for e in range(n_local):
        if a_ok[e]:
            a, b, mask = local_a[e], local_b[e], local_mask[e]
            proposal = (strings[a] & ~mask) | (strings[b] & mask)
            n_touched = _offer(a, proposal, value_a[e], best_value, best_string, touched, n_touched)
    for e in range(n_local):
        if b_ok[e]:
            a, b, mask = local_a[e], local_b[e], local_mask[e]
            proposal = (strings[b] & ~mask) | (strings[a] & mask)
            n_touched = _offer(b, proposal, value_b[e], best_value, best_string, touched, n_touched)
    # the other proposals are collected in the kernel's pair order, then evaluated two at a time
    capacity = len(pipe_firm) + 2 * len(world_a) + len(explorer)
    pending_learner = np.empty(capacity, dtype=np.int64)
    pending = np.empty(capacity, dtype=np.uint64)
    n_pending = 0
    # pipelines: the firm learns from the foreign agent (always, or by barter)
    for e in range(len(pipe_firm)):
        firm, mask = pipe_firm[e], pipe_mask[e]
        own = strings[firm]
        source = pipe_foreign[e] if evolving else firm
        other = strings[source]
        proposal = (own & ~mask) | (other & mask)
        if proposal == own or not _absorbs(
            own, other, pipe_absorb[e], n_loci, exponents[firm], chance
        ):
            continue
        if pipe_barter and not pipe_open[e] < omega:
            back = (other & ~mask) | (own & mask)
            if back == other or not _fitness(back, tables, n_loci, code_mask) > fitness[source]:
                continue
        pending_learner[n_pending], pending[n_pending] = firm, proposal
        n_pending += 1
    # ties inside the world pool: side a, then side b
    for side in range(2):
        for e in range(len(world_a)):
            mask = world_mask[e]
            learner, source = (world_a[e], world_b[e]) if side == 0 else (world_b[e], world_a[e])
            own, other = strings[learner], strings[source]
            proposal = (own & ~mask) | (other & mask)
            absorb = world_absorb_a[e] if side == 0 else world_absorb_b[e]
            if proposal == own or not _absorbs(
                own, other, absorb, n_loci, exponents[learner], chance
            ):
                continue
            if world_barter:
                open_draw = world_open_a[e] if side == 0 else world_open_b[e]
                if not open_draw < omega:
                    back = (other & ~mask) | (own & mask)
                    if back == other or not (
                        _fitness(back, tables, n_loci, code_mask) > fitness[source]
                    ):
                        continue
            pending_learner[n_pending], pending[n_pending] = learner, proposal
            n_pending += 1
    # own exploration: one bit flip
    for e in range(len(explorer)):
        agent = explorer[e]
        pending_learner[n_pending] = agent
        pending[n_pending] = strings[agent] ^ (np.uint64(1) << np.uint64(explore_bit[e]))
        n_pending += 1
    for e in range(0, n_pending, 2):
        if e + 1 < n_pending:
            first, second = _fitness2(pending[e], pending[e + 1], tables, n_loci, code_mask)
        else:
            first, second = _fitness(pending[e], tables, n_loci, code_mask), 0.0
        n_touched = _offer(
            pending_learner[e], pending[e], first, best_value, best_string, touched, n_touched
        )
        if e + 1 < n_pending:
            n_touched = _offer(
                pending_learner[e + 1], pending[e + 1], second, best_value, best_string,
                touched, n_touched,
            )  # fmt: skip
    # adopt the best proposal where it beats the current fitness
    count = 0
    for t in range(n_touched):
        agent = touched[t]
        if best_value[agent] > fitness[agent]:
            count += 1
    winners = np.empty(count, dtype=np.int64)
    old = np.empty((count, n_loci))
    at = 0
    for t in range(n_touched):
        agent = touched[t]
        if best_value[agent] > fitness[agent]:
            winners[at] = agent
            old[at] = contributions[agent]
            strings[agent] = best_string[agent]
            _contributions(best_string[agent], tables, n_loci, code_mask, contributions[agent])
            fitness[agent] = best_value[agent]
            at += 1
        best_value[agent] = -np.inf
    order = np.argsort(winners)
    return winners[order], old[order]


@njit(cache=True)
def bit_counts(strings, start, sizes, n_loci):
    """Per block (city) and locus, how many strings have the bit set: shape (C, N)."""
    counts = np.zeros((len(start), n_loci), dtype=np.int64)
    for c in range(len(start)):
        for i in range(start[c], start[c] + sizes[c]):
            string = strings[i]
            for locus in range(n_loci):
                counts[c, locus] += (string >> np.uint64(locus)) & np.uint64(1)
    return counts


@njit(cache=True)
def product_fitness(contributions, rows, n_product):
    """Mean contribution of the first ``n_product`` loci, for the given rows (in locus order)."""
    out = np.empty(len(rows))
    for r in range(len(rows)):
        total = 0.0
        for locus in range(n_product):
            total += contributions[rows[r], locus]
        out[r] = total / n_product
    return out


@njit(cache=True)
def _keep_active(keys, active_h, activities, out, flags):
    """Indices of the ties used this step, in tie order, into ``out``; returns their count.
    ``activities`` is one chance or one per key. The draws are compared in one loop (which the
    compiler vectorises), then the indices kept in another, branch-free: each index is written
    and kept by counting it. ``flags`` is scratch of one entry per key."""
    n = len(keys)
    per_key = activities.size > 1
    for e in range(n):
        flags[e] = _unit(_part(active_h, keys[e])) < activities[e if per_key else 0]
    count = 0
    for e in range(n):
        out[count] = e
        count += flags[e]
    return count


@njit(cache=True)
def _uniforms(h, keys, out):
    for e in range(len(keys)):
        out[e] = _unit(_part(h, keys[e]))


@njit(cache=True)
def _masks(h, keys, q, mask_bits, full, out):
    """:func:`_mask` for every key, digit by digit over all keys: the same words and the same
    masks, in loops without branches (``q`` is known only at run time, so a loop over the
    digits inside the loop over keys would branch on every digit)."""
    n = len(keys)
    if q == 0 or q == 1 << mask_bits:
        for e in range(n):
            out[e] = np.uint64(0) if q == 0 else full
        return
    low = 0
    while not (q >> low) & 1:
        low += 1
    hashes = np.empty(n, dtype=np.uint64)
    for e in range(n):
        hashes[e] = _part(h, keys[e])
        out[e] = np.uint64(0)
    for digit in range(low, mask_bits):
        step = np.uint64(digit + 1) * _G
        either = np.uint64(0xFFFFFFFFFFFFFFFF) if (q >> digit) & 1 else np.uint64(0)
        for e in range(n):
            word = _mix(hashes[e] + step)
            out[e] = (out[e] & word) | ((out[e] | word) & either)  # | word on a 1, & word on a 0
    for e in range(n):
        out[e] = out[e] & full


@njit(cache=True)
def _learns_by_tie(
    learner, source, keys, absorb_h, open_h, mask_h, strings, fitness, tables, n_loci,
    code_mask, exponents, chance, omega, barter, q, mask_bits, best_value, best_string, masks,
    draws, candidates, proposals, values,
):  # fmt: skip
    """One-way learning over ties (pipelines, or one side of the world's ties), in tie order:
    the learner absorbs from the source (always, or by barter: the source shares when it is
    open or gains from the reverse proposal) and offers the recombined string. ``masks``,
    ``draws``, ``candidates``, ``proposals`` and ``values`` are scratch of one entry per tie."""
    n = len(keys)
    full = np.uint64((1 << n_loci) - 1)
    _masks(mask_h, keys, q, mask_bits, full, masks)
    _uniforms(absorb_h, keys, draws)
    uniform = len(chance) > 0
    count = 0  # the ties whose learner absorbs a proposal that changes its string (branch-free)
    for e in range(n):
        own, other = strings[learner[e]], strings[source[e]]
        differ = own ^ other
        distance = _popcount(differ)
        if uniform:  # as _absorbs (a branch on the loop's constant: no exponent is read)
            absorbs = draws[e] < chance[distance]
        else:
            absorbs = draws[e] < (1.0 - distance / n_loci) ** exponents[learner[e]]
        taken = differ & masks[e]
        candidates[count] = e
        proposals[count] = own ^ taken
        count += absorbs & (taken != 0)
    if barter:  # the source shares when it is open, or when the reverse proposal gains it
        opens = omega > 0.0
        kept = 0
        for i in range(count):
            e = candidates[i]
            other_agent = source[e]
            if not (opens and _unit(_part(open_h, keys[e])) < omega):
                back = strings[other_agent] ^ (proposals[i] ^ strings[learner[e]])
                if not _fitness(back, tables, n_loci, code_mask) > fitness[other_agent]:
                    continue
            candidates[kept], proposals[kept] = e, proposals[i]
            kept += 1
        count = kept
    _evaluate(proposals, count, tables, n_loci, code_mask, values)
    for i in range(count):
        _propose(learner[candidates[i]], proposals[i], values[i], best_value, best_string)


_AHEAD = 8  # winners ahead whose contributions the adoption loop asks the processor to fetch


@njit(cache=True)
def fused_step(
    step_key, strings, contributions, fitness, tables, n_loci, code_mask, exponents, chance,
    omega, local_source, local_target, local_key, local_activity, buzz_firm, buzz_key,
    buzz_start, buzz_size, pipe_source, pipe_target, pipe_key, pipe_activity, pipe_barter,
    evolving, world_source, world_target, world_key, world_activity, world_barter, agent_key,
    explore_rate, q, mask_bits, best_value, best_string, scratch_index, scratch_a,
    scratch_b, scratch_key, scratch_string, scratch_flag, scratch_draw, scratch_offer,
    scratch_own, scratch_fit, scratch_proposal, scratch_value, n_firms, n_product, product,
    counts, block_of, product_gain, process_gain,
):  # fmt: skip
    """:func:`draw_arrays` and :func:`learn_step` in one call: the same numbers, the same rules,
    the same strings and fitness bits, without the draws as arrays of the step.

    The draws are counter-based (a hash of the step key, the purpose and the tie or agent), so a
    number is the same whether it is computed or skipped: the numbers every used tie needs are
    computed in branch-free loops over the ties, and the rules then skip what they do not read
    (a tie whose ends hold the same string proposes nothing; a fitness is computed only when a
    rule compares it; an openness draw only when omega > 0, since a uniform is never below 0).
    Offers are made in the kernel's pair order (local side a in tie order, then side b,
    pipelines, world side a, side b, exploration), so ties in value are broken as there.
    ``scratch_*`` hold one entry per local tie, buzz contact and world tie (``scratch_draw``:
    two rows); ``scratch_proposal`` and ``scratch_value`` two entries per local tie;
    ``best_value`` is every agent's -inf on entry and is left so. Each winner is recorded as
    :func:`record_adoption` records it (product fitness, bit counts, window gains). Returns the
    winners in agent order, the contributions and the strings they gave up.
    """
    full = np.uint64((1 << n_loci) - 1)
    (active_h, buzz_h, mask_h, open_a_h, open_b_h, absorb_a_h, absorb_b_h, explore_h,
     bit_h) = _purposes(step_key)  # fmt: skip
    opens = omega > 0.0  # a uniform is never below 0: no openness draw can pass

    # local ties used this step (partner ties, then every buzz contact): ends, keys and draws
    n_local = _keep_active(
        local_key, active_h, np.array([local_activity]), scratch_index, scratch_flag
    )  # fmt: skip
    la, lb, keys = scratch_a, scratch_b, scratch_key
    for t in range(n_local):
        e = scratch_index[t]
        la[t], lb[t], keys[t] = local_source[e], local_target[e], local_key[e]
    for i in range(len(buzz_firm)):
        member, start, size = buzz_firm[i], buzz_start[i], buzz_size[i]
        u = _unit(_part(buzz_h, buzz_key[i]))
        offset = member - start + np.int64(np.floor(u * max(size - 1, 1))) + 1
        offset = offset - size if offset >= size else offset  # (member - start + step) % size
        t = n_local + i
        la[t], lb[t], keys[t] = member, start + offset if size > 1 else member, buzz_key[i]
    n_ties = n_local + len(buzz_firm)
    draw_a, draw_b = scratch_draw[0, :n_ties], scratch_draw[1, :n_ties]
    _uniforms(absorb_a_h, keys[:n_ties], draw_a)
    _uniforms(absorb_b_h, keys[:n_ties], draw_b)
    masks = scratch_string[:n_ties]
    _masks(mask_h, keys[:n_ties], q, mask_bits, full, masks)

    # local rules: exchange when the other side gains, or when one is open (omega). First,
    # branch-free, the ties where a proposal changes a string and at least one side absorbs,
    # with both ends' strings and fitness copied in order (one pass of independent reads)
    flags = scratch_flag
    own_a_of, own_b_of = scratch_own[0], scratch_own[1]
    fitness_a, fitness_b = scratch_fit[0], scratch_fit[1]
    uniform = len(chance) > 0
    n_cand = 0
    for t in range(n_ties):
        a, b = la[t], lb[t]
        own_a, own_b = strings[a], strings[b]
        differ = own_a ^ own_b
        distance = _popcount(differ)
        if uniform:  # as _absorbs (a branch on the loop's constant: no exponent is read)
            absorb_a = draw_a[t] < chance[distance]
            absorb_b = draw_b[t] < chance[distance]
        else:
            absorb_a = draw_a[t] < (1.0 - distance / n_loci) ** exponents[a]
            absorb_b = draw_b[t] < (1.0 - distance / n_loci) ** exponents[b]
        scratch_index[n_cand] = t
        own_a_of[n_cand], own_b_of[n_cand] = own_a, own_b
        fitness_a[n_cand], fitness_b[n_cand] = fitness[a], fitness[b]
        flags[n_cand] = np.uint8(absorb_a) | (np.uint8(absorb_b) << np.uint8(1))
        n_cand += ((differ & masks[t]) != 0) & (absorb_a | absorb_b)
    # both proposals' fitness for each of them (the rules read one or both: a learns when b
    # gains, b when a gains, and the learner's own proposal is what it offers)
    proposals, values = scratch_proposal, scratch_value
    for i in range(n_cand):
        own_a, own_b = own_a_of[i], own_b_of[i]
        taken = (own_a ^ own_b) & masks[scratch_index[i]]
        proposals[2 * i], proposals[2 * i + 1] = own_a ^ taken, own_b ^ taken
    _evaluate(proposals, 2 * n_cand, tables, n_loci, code_mask, values)
    # who learns (branch-free): side a offers first, in tie order; then side b
    n_offer = 0
    for i in range(n_cand):
        t = scratch_index[i]
        absorb_a, absorb_b = (flags[i] & 1) != 0, (flags[i] & 2) != 0
        open_a = open_b = False
        if opens:
            open_a = _unit(_part(open_a_h, keys[t])) < omega
            open_b = _unit(_part(open_b_h, keys[t])) < omega
        flags[i] = absorb_b & ((values[2 * i] > fitness_a[i]) | open_b)
        scratch_offer[n_offer] = i
        n_offer += absorb_a & ((values[2 * i + 1] > fitness_b[i]) | open_a)
    for j in range(n_offer):
        i = scratch_offer[j]
        _propose(la[scratch_index[i]], proposals[2 * i], values[2 * i], best_value, best_string)
    n_offer = 0
    for i in range(n_cand):
        scratch_offer[n_offer] = i
        n_offer += flags[i]
    for j in range(n_offer):
        i = scratch_offer[j]
        _propose(
            lb[scratch_index[i]], proposals[2 * i + 1], values[2 * i + 1], best_value, best_string
        )  # fmt: skip

    # pipelines: the firm learns from the foreign agent (always, or by barter); a world
    # without new knowledge hands back the firm's own string
    if evolving:
        n_pipe = _keep_active(
            pipe_key, active_h, np.array([pipe_activity]), scratch_index, scratch_flag
        )  # fmt: skip
        use = scratch_index[:n_pipe]
        _learns_by_tie(
            pipe_source[use], pipe_target[use], pipe_key[use], absorb_a_h, open_b_h, mask_h,
            strings, fitness, tables, n_loci, code_mask, exponents, chance, omega, pipe_barter,
            q, mask_bits, best_value, best_string, scratch_string,
            scratch_draw[0], scratch_a, scratch_proposal, scratch_value,
        )  # fmt: skip
    # ties inside the world pool: side a in tie order, then side b
    n_world = _keep_active(
        world_key, active_h, np.array([world_activity]), scratch_index, scratch_flag
    )  # fmt: skip
    use = scratch_index[:n_world]
    ends_a, ends_b, used = world_source[use], world_target[use], world_key[use]
    _learns_by_tie(
        ends_a, ends_b, used, absorb_a_h, open_a_h, mask_h, strings, fitness, tables, n_loci,
        code_mask, exponents, chance, omega, world_barter, q, mask_bits, best_value,
        best_string, scratch_string, scratch_draw[0], scratch_a,
        scratch_proposal, scratch_value,
    )  # fmt: skip
    _learns_by_tie(
        ends_b, ends_a, used, absorb_b_h, open_b_h, mask_h, strings, fitness, tables, n_loci,
        code_mask, exponents, chance, omega, world_barter, q, mask_bits, best_value,
        best_string, scratch_string, scratch_draw[0], scratch_a,
        scratch_proposal, scratch_value,
    )  # fmt: skip
    # own exploration: one bit flip
    n_explore = _keep_active(agent_key, explore_h, explore_rate, scratch_index, scratch_flag)
    for i in range(n_explore):
        agent = scratch_index[i]
        bit = np.int64(np.floor(_unit(_part(bit_h, agent_key[agent])) * n_loci))
        proposals[i] = strings[agent] ^ (np.uint64(1) << np.uint64(bit))
    _evaluate(proposals, n_explore, tables, n_loci, code_mask, values)
    for i in range(n_explore):
        _propose(scratch_index[i], proposals[i], values[i], best_value, best_string)

    # adopt the best proposal where it beats the current fitness, in agent order: the winners
    # listed first (branch-free), so each one's row of contributions is fetched ahead of use
    count = 0
    for agent in range(len(strings)):
        scratch_index[count] = agent
        count += best_value[agent] > fitness[agent]
    winners = scratch_index[:count].copy()
    old = np.empty((count, n_loci))
    old_strings = np.empty(count, dtype=np.uint64)
    for w in range(count):
        if w + _AHEAD < count:
            ahead = winners[w + _AHEAD]
            for column in range(0, n_loci, 8):  # every cache line of the row
                _prefetch(contributions, ahead, column)
        agent = winners[w]
        old[w] = contributions[agent]
        old_strings[w] = strings[agent]
        strings[agent] = best_string[agent]
        _contributions(best_string[agent], tables, n_loci, code_mask, contributions[agent])
        fitness[agent] = best_value[agent]
        _record(
            agent, old[w], contributions[agent], old_strings[w], strings[agent], n_firms,
            n_product, product, counts, block_of, product_gain, process_gain,
        )  # fmt: skip
    best_value[:] = -np.inf
    return winners, old, old_strings
