// Shows a <dialog> as a modal (focus moved in, page behind inert) for as long as it is rendered.
import type { RefObject } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';

export function useModal(): RefObject<HTMLDialogElement | null> {
  const ref = useRef<HTMLDialogElement>(null);
  useLayoutEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    // Closing (rather than only removing) hands focus back to where it was before.
    return () => {
      if (dialog?.open) dialog.close();
    };
  }, []);
  return ref;
}
