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
from numba import njit

from buzzpipe.simulate import streams

_G = np.uint64(streams.GOLDEN)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


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


@njit(cache=True)
def draw_arrays(
    step_key, local_source, local_target, local_key, local_activity, buzz_firm, buzz_key,
    buzz_start, buzz_size, pipe_source, pipe_target, pipe_key, pipe_activity, world_source,
    world_target, world_key, world_activity, agent_key, explore_rate, q, mask_bits, n_loci,
    pipe_barter, world_barter,
):  # fmt: skip
    """Every keyed number of one step (the arrays of ``kernel.StepDraws`` but the shock)."""
    full = np.uint64((1 << n_loci) - 1)
    active_h = _part(step_key, streams.ACTIVE)
    buzz_h = _part(step_key, streams.BUZZ_PARTNER)
    mask_h = _part(step_key, streams.MASK)
    open_a_h = _part(step_key, streams.OPEN_A)
    open_b_h = _part(step_key, streams.OPEN_B)
    absorb_a_h = _part(step_key, streams.ABSORB_A)
    absorb_b_h = _part(step_key, streams.ABSORB_B)
    explore_h = _part(step_key, streams.EXPLORE)
    bit_h = _part(step_key, streams.EXPLORE_BIT)

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


@njit(cache=True)
def shock_step(strings, contributions, fitness, tables, loci, n_loci, code_mask):
    """Recompute the shocked loci's contributions and every fitness (summed locus by locus)."""
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
        fitness[i] = total / n_loci


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
def best_product_fitness(contributions, first, stop, n_product):
    """The highest product fitness among rows first..stop-1 (as :func:`product_fitness`)."""
    best = -np.inf
    for row in range(first, stop):
        total = 0.0
        for locus in range(n_product):
            total += contributions[row, locus]
        best = max(best, total / n_product)
    return best
