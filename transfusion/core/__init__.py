"""Infrastructure every layer uses, written once: atomic files and CSV tables (:mod:`.files`),
numbers as text (:mod:`.text`), the runtime policy — device, bf16 autocast, channels-last,
threads (:mod:`.runtime`) — and the description of the machine (:mod:`.machine`).

It imports nothing else from transfusion, so any package may import it.
"""
