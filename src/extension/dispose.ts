/**
 * Disposal helpers shared by the providers (the `Disposable` base of vscode-hexeditor and the
 * extension samples): a class collects what it registers and releases it all once.
 */
import * as vscode from 'vscode';

export function disposeAll(disposables: vscode.Disposable[]): void {
  while (disposables.length) {
    const item = disposables.pop();
    try {
      item?.dispose();
    } catch {
      // One failing dispose must not keep the others alive.
    }
  }
}

export abstract class Disposable implements vscode.Disposable {
  private disposed = false;
  protected readonly disposables: vscode.Disposable[] = [];

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeAll(this.disposables);
  }

  protected register<T extends vscode.Disposable>(value: T): T {
    if (this.disposed) value.dispose();
    else this.disposables.push(value);
    return value;
  }
}
